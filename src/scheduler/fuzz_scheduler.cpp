// libFuzzer target: the input bytes script a workload (options, submissions over a few shared prompt stems,
// aborts, steps with arbitrary sampled tokens). The scheduler checks page integrity after every call; at the
// end every request must finish and, after a flush, every page must be free again.

#include <cstddef>
#include <cstdint>
#include <vector>

#include "scheduler/scheduler.h"

namespace {

struct Bytes {
  const uint8_t* data;
  size_t size;
  size_t pos = 0;
  uint8_t next() { return pos < size ? data[pos++] : 0; }
  bool done() const { return pos >= size; }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace radixlm;
  Bytes in{data, size};
  SchedulerOptions o;
  o.page_size = 1 + in.next() % 4;
  o.max_total_tokens = int64_t{o.page_size} * (4 + in.next() % 40);
  o.chunked_prefill_size = in.next() % 2 ? -1 : int64_t{o.page_size} * (1 + in.next() % 4);
  o.max_running_requests = 1 + in.next() % 8;
  o.max_prefill_tokens = 1 + in.next() % 40;
  o.policy = static_cast<SchedulePolicy>(in.next() % 5);
  o.schedule_conservativeness = 0.01 + in.next() / 64.0;
  o.disable_radix_cache = in.next() % 4 == 0;
  o.enable_mixed_chunk = in.next() % 2 == 0;
  o.max_queued_requests = in.next() % 2 ? -1 : in.next() % 8;
  o.context_length = 16 + in.next() % 64;
  o.eos_token_ids = {3};
  o.check_integrity_every_step = true;
  auto created = Scheduler::create(o);
  if (!created.ok()) return 0;
  Scheduler& s = **created;

  uint64_t next_id = 1;
  auto step = [&](uint8_t token_seed) {
    const BatchPlan plan = s.schedule();
    std::vector<SampledToken> sampled(static_cast<size_t>(plan.num_sampled()));
    for (size_t i = 0; i < sampled.size(); ++i) sampled[i].token_id = static_cast<int32_t>((token_seed + i) % 8);
    s.complete(plan, sampled);
    s.take_updates();
  };
  while (!in.done()) {
    const uint8_t op = in.next();
    if (op % 4 == 0) {
      RequestInput r;
      r.id = next_id++;
      const int32_t stem = in.next() % 3;
      const int32_t length = 1 + in.next() % 24;
      for (int32_t i = 0; i < length; ++i) r.prompt.push_back(i < length - 2 ? stem * 100 + i : 10 + in.next() % 4);
      r.params.max_new_tokens = in.next() % 12;
      r.params.ignore_eos = in.next() % 2 == 0;
      r.priority = in.next() % 3;
      r.return_prompt_logits = in.next() % 8 == 0;
      (void)s.submit(std::move(r));
    } else if (op % 4 == 1) {
      if (next_id > 1) s.abort(1 + in.next() % (next_id - 1));
    } else {
      step(in.next());
    }
  }
  for (int i = 0; i < 10000 && !s.idle(); ++i) step(static_cast<uint8_t>(i));
  RADIXLM_CHECK(s.idle(), "requests left after 10000 steps");
  s.cache().flush();
  RADIXLM_CHECK(s.page_pool().num_free() == s.page_pool().num_pages(), "pages lost");
  return 0;
}
