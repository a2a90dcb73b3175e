#include "bench/url.h"

#include <gtest/gtest.h>

namespace radixlm::bench {
namespace {

TEST(ParseBaseUrl, HostPortAndPrefix) {
  auto a = parse_base_url("http://127.0.0.1:30000");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, 30000);
  EXPECT_EQ(a->target("/generate"), "/generate");

  auto b = parse_base_url("http://example.org/api/");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->host, "example.org");
  EXPECT_EQ(b->port, 80);
  EXPECT_EQ(b->target("/v1/completions"), "/api/v1/completions");

  auto c = parse_base_url("http://[::1]:8080/x");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->host, "::1");
  EXPECT_EQ(c->port, 8080);
  EXPECT_EQ(c->to_string(), "http://[::1]:8080/x");
}

TEST(ParseBaseUrl, Rejects) {
  for (const char* bad : {"https://host:1", "host:1", "http://", "http://:80", "http://h:0", "http://h:70000",
                          "http://h:12x", "http://[::1", "http://[::1]x"}) {
    EXPECT_FALSE(parse_base_url(bad).ok()) << bad;
  }
}

}  // namespace
}  // namespace radixlm::bench
