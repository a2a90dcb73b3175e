#pragma once
// The name of a JSON value's type for error messages ("must be a string, got integer"), for nlohmann's json
// and ordered_json alike. A template on the JSON type, so core/ needs no JSON library of its own.

namespace radixlm {

// "object", "array", "string", "boolean", "integer", "number", "null", or "value" for anything else.
template <typename J>
const char* json_type_name(const J& value) {
  switch (value.type()) {
    case J::value_t::object: return "object";
    case J::value_t::array: return "array";
    case J::value_t::string: return "string";
    case J::value_t::boolean: return "boolean";
    case J::value_t::number_integer:
    case J::value_t::number_unsigned: return "integer";
    case J::value_t::number_float: return "number";
    case J::value_t::null: return "null";
    default: return "value";
  }
}

}  // namespace radixlm
