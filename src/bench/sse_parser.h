#pragma once
// Incremental Server-Sent Events parser (the WHATWG event-stream format) for bytes that arrive in arbitrary
// pieces: a network read may end inside a line, inside a "\r\n" pair or inside a UTF-8 character, and one
// read may carry several events. feed() returns the events completed by these bytes; each event's data is
// its "data:" lines joined with "\n" (one leading space after the colon removed). Comment lines (":...")
// and other fields (event:, id:, retry:) are skipped. finish() flushes an event the stream ended without
// terminating with a blank line.

#include <string>
#include <string_view>
#include <vector>

namespace radixlm::bench {

class SseParser {
 public:
  std::vector<std::string> feed(std::string_view bytes);
  std::vector<std::string> finish();

 private:
  void take_line(std::string_view line, std::vector<std::string>& events);

  std::string line_;           // the unfinished line carried over from the previous feed()
  bool skip_lf_ = false;       // the previous piece ended with '\r': a '\n' at the start belongs to it
  std::string data_;           // data of the event being assembled
  bool has_data_ = false;
};

}  // namespace radixlm::bench
