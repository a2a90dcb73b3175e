// open_checkpoint: a model directory's safetensors weights, single-file or sharded through
// model.safetensors.index.json, behind the WeightSource interface.

#include <algorithm>
#include <map>
#include <system_error>
#include <unordered_map>

#include "loader/json_fields.h"
#include "loader/safetensors.h"
#include "loader/weight_source.h"

namespace radixlm {

using loader_detail::Json;

namespace {

constexpr const char* kSingleFile = "model.safetensors";
constexpr const char* kIndexFile = "model.safetensors.index.json";

// Where each tensor lives: the file and its entry there.
struct TensorLocation {
  std::shared_ptr<SafetensorsFile> file;
  const SafetensorsEntry* entry = nullptr;
};

class CheckpointWeights final : public WeightSource {
 public:
  explicit CheckpointWeights(std::filesystem::path dir) : dir_(std::move(dir)) {}

  void add(const std::string& name, TensorLocation location) { tensors_[name] = std::move(location); }

  bool contains(const std::string& name) const override { return tensors_.count(name) != 0; }

  Expected<Tensor> get(const std::string& name, const Shape& expected_shape) override {
    auto it = tensors_.find(name);
    if (it == tensors_.end()) {
      return make_error(StatusCode::kNotFound, "{}: tensor '{}' not found in the checkpoint", dir_.string(), name);
    }
    const TensorLocation& location = it->second;
    if (!(location.entry->shape == expected_shape)) {
      return make_error(StatusCode::kInvalidArgument, "{}: tensor '{}': shape {} but the model expects {}",
                        location.file->path().string(), name, location.entry->shape.to_string(),
                        expected_shape.to_string());
    }
    return location.file->tensor(*location.entry, location.file);
  }

  std::vector<std::string> names() const override {
    std::vector<std::string> out;
    out.reserve(tensors_.size());
    for (const auto& [name, location] : tensors_) out.push_back(name);
    std::sort(out.begin(), out.end());
    return out;
  }

 private:
  std::filesystem::path dir_;
  std::unordered_map<std::string, TensorLocation> tensors_;
};

// A shard name from the index, as a path inside `dir`: relative and without "..", so a hostile index cannot
// reach files elsewhere. (Symlinks inside the directory are fine: the HF hub cache is made of them.)
Expected<std::filesystem::path> shard_path(const std::filesystem::path& dir, const std::string& shard,
                                           const std::string& index_source) {
  const std::filesystem::path relative(shard);
  bool escapes = shard.empty() || relative.is_absolute() || relative.has_root_name() || relative.has_root_directory();
  for (const auto& part : relative) {
    if (part == "..") escapes = true;
  }
  if (shard.find('\0') != std::string::npos) escapes = true;
  if (escapes) {
    return make_error(StatusCode::kInvalidArgument, "{}: shard file '{}' is not a plain path inside the model directory",
                      index_source, shard);
  }
  return dir / relative;
}

Expected<std::unique_ptr<WeightSource>> open_sharded(const std::filesystem::path& dir) {
  const std::filesystem::path index_path = dir / kIndexFile;
  const std::string source = index_path.string();
  RADIXLM_ASSIGN_OR_RETURN(std::string text, loader_detail::read_text_file(index_path));
  RADIXLM_ASSIGN_OR_RETURN(Json index, loader_detail::parse_json(text, source));
  if (!index.is_object()) {
    return make_error(StatusCode::kInvalidArgument, "{}: must be a JSON object", source);
  }
  auto map_it = index.find("weight_map");
  if (map_it == index.end() || !map_it->is_object()) {
    return make_error(StatusCode::kInvalidArgument, "{}: no 'weight_map' object", source);
  }
  if (map_it->empty()) return make_error(StatusCode::kInvalidArgument, "{}: 'weight_map' is empty", source);

  // Validate every name first, then open each shard once (std::map: a stable, readable order for errors).
  std::map<std::string, std::vector<std::string>> tensors_by_shard;
  for (const auto& [name, shard] : map_it->items()) {
    if (!shard.is_string()) {
      return make_error(StatusCode::kInvalidArgument, "{}: weight_map['{}'] must be a file name, got {}", source, name,
                        json_type_name(shard));
    }
    tensors_by_shard[shard.get<std::string>()].push_back(name);
  }
  auto weights = std::make_unique<CheckpointWeights>(dir);
  for (const auto& [shard, names] : tensors_by_shard) {
    RADIXLM_ASSIGN_OR_RETURN(std::filesystem::path path, shard_path(dir, shard, source));
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) {
      return make_error(StatusCode::kNotFound, "{}: shard '{}' (holding '{}' and {} more tensors) is missing from {}",
                        source, shard, names.front(), names.size() - 1, dir.string());
    }
    RADIXLM_ASSIGN_OR_RETURN(std::shared_ptr<SafetensorsFile> file, SafetensorsFile::open(path));
    for (const std::string& name : names) {
      const SafetensorsEntry* entry = file->find(name);
      if (!entry) {
        return make_error(StatusCode::kCorruptData, "{}: tensor '{}' is mapped to shard '{}', which does not hold it",
                          source, name, shard);
      }
      weights->add(name, TensorLocation{file, entry});
    }
  }
  return std::unique_ptr<WeightSource>(std::move(weights));
}

Expected<std::unique_ptr<WeightSource>> open_files(const std::filesystem::path& dir,
                                                   const std::vector<std::filesystem::path>& paths) {
  auto weights = std::make_unique<CheckpointWeights>(dir);
  std::unordered_map<std::string, std::string> owner;
  for (const auto& path : paths) {
    RADIXLM_ASSIGN_OR_RETURN(std::shared_ptr<SafetensorsFile> file, SafetensorsFile::open(path));
    for (const SafetensorsEntry& entry : file->entries()) {
      auto [it, inserted] = owner.emplace(entry.name, path.string());
      if (!inserted) {
        return make_error(StatusCode::kCorruptData, "tensor '{}' is in both {} and {}", entry.name, it->second,
                          path.string());
      }
      weights->add(entry.name, TensorLocation{file, &entry});
    }
  }
  return std::unique_ptr<WeightSource>(std::move(weights));
}

}  // namespace

Expected<std::unique_ptr<WeightSource>> open_checkpoint(const std::filesystem::path& model_dir) {
  std::error_code ec;
  if (!std::filesystem::is_directory(model_dir, ec)) {
    return make_error(StatusCode::kNotFound, "{}: not a directory", model_dir.string());
  }
  if (std::filesystem::exists(model_dir / kIndexFile, ec)) return open_sharded(model_dir);
  if (std::filesystem::exists(model_dir / kSingleFile, ec)) return open_files(model_dir, {model_dir / kSingleFile});
  // No index and no model.safetensors: take every *.safetensors there, as SGLang does (e.g. consolidated.*).
  std::vector<std::filesystem::path> found;
  for (const auto& item : std::filesystem::directory_iterator(model_dir, ec)) {
    if (item.path().extension() == ".safetensors") found.push_back(item.path());
  }
  std::sort(found.begin(), found.end());
  if (found.empty()) {
    return make_error(StatusCode::kNotFound, "{}: no {} or {} (or any *.safetensors) in the model directory",
                      model_dir.string(), kSingleFile, kIndexFile);
  }
  return open_files(model_dir, found);
}

}  // namespace radixlm
