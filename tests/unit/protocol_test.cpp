// The wire codec: headers, meta frames, READY, addresses, and the shared
// test vectors in tests/vectors that the Python suite checks too.
#include <gtest/gtest.h>

#include <fstream>
#include <random>

#include "troupe/protocol.hpp"

namespace troupe::protocol {
namespace {

std::string bytes_from_hex(const std::string& hex) {
  std::string out;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2)
    out.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  return out;
}

std::vector<std::string> read_vector(const std::string& name) {
  std::ifstream in(std::string(TROUPE_VECTORS_DIR) + "/" + name + ".hex");
  EXPECT_TRUE(in.good()) << "missing vector " << name;
  std::vector<std::string> frames;
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) frames.push_back(bytes_from_hex(line));
  return frames;
}

std::string hdr(command c) {
  auto h = header(c);
  return std::string(h.begin(), h.end());
}

std::string request(std::uint64_t id, std::string_view address, std::string_view method, std::uint64_t flags,
                    std::uint64_t timeout) {
  std::string out;
  encode_request_meta(out, {id, address, method, flags, timeout});
  return out;
}

std::string reply(std::uint64_t id, std::string_view st) {
  std::string out;
  encode_reply_meta(out, id, st);
  return out;
}

std::string str(std::string_view s) {
  std::string out;
  encode_str(out, s);
  return out;
}

TEST(Header, RoundTripsEveryCommand) {
  for (auto c : {command::request, command::reply, command::ready, command::heartbeat, command::disconnect}) {
    const auto h = header(c);
    EXPECT_EQ(parse_header(h.data(), h.size()), c);
  }
}

TEST(Header, RejectsWrongSignatureVersionCommandAndSize) {
  EXPECT_FALSE(parse_header("TRQ\x01\x01", 5));
  EXPECT_FALSE(parse_header("TRP\x02\x01", 5));
  EXPECT_FALSE(parse_header("TRP\x01\x06", 5));
  EXPECT_FALSE(parse_header("TRP\x01\x00", 5));
  EXPECT_FALSE(parse_header("TRP\x01", 4));
  EXPECT_FALSE(parse_header("TRP\x01\x01x", 6));
}

TEST(RequestMeta, RoundTrips) {
  const auto bytes = request(0xffffffffffffffffULL, "counter/alice", "add", flag_tell, 1234);
  auto m = decode_request_meta(bytes.data(), bytes.size());
  ASSERT_TRUE(m);
  EXPECT_EQ(m->id, 0xffffffffffffffffULL);
  EXPECT_EQ(m->address, "counter/alice");
  EXPECT_EQ(m->method, "add");
  EXPECT_TRUE(m->is_tell());
  EXPECT_EQ(m->timeout_ms, 1234u);
}

TEST(RequestMeta, AcceptsNonShortestIntegers) {
  // [7 as uint64, "a", "b", 0 as uint8, 5 as uint16]
  const std::string bytes(
      "\x95\xcf\0\0\0\0\0\0\0\x07\xa1"
      "a"
      "\xa1"
      "b"
      "\xcc\x00\xcd\x00\x05",
      19);
  auto m = decode_request_meta(bytes.data(), bytes.size());
  ASSERT_TRUE(m);
  EXPECT_EQ(m->id, 7u);
  EXPECT_EQ(m->timeout_ms, 5u);
}

TEST(RequestMeta, RejectsWrongShapes) {
  auto bad = [](const std::string& b) { return !decode_request_meta(b.data(), b.size()); };
  EXPECT_TRUE(bad(""));
  EXPECT_TRUE(
      bad("\x94\x01\xa1"
          "a\xa1"
          "b\x00"));  // 4 elements
  EXPECT_TRUE(
      bad(std::string("\x95\xff\xa1"
                      "a\xa1"
                      "b\x00\x00",
                      9)));  // negative id
  EXPECT_TRUE(
      bad(std::string("\x95\x01\x01\xa1"
                      "b\x00\x00",
                      7)));  // address not a str
  EXPECT_TRUE(
      bad(std::string("\x95\x01\xa1"
                      "a\xa1"
                      "b\x00\x00\x00",
                      9)));  // trailing byte
  EXPECT_TRUE(
      bad(std::string("\x95\x01\xa5"
                      "a",
                      4)));                                  // truncated str
  EXPECT_TRUE(bad(std::string("\xdd\xff\xff\xff\xff", 5)));  // array bomb
}

TEST(ReplyMeta, RoundTripsAndRejects) {
  const auto bytes = reply(42, "worker_lost");
  auto m = decode_reply_meta(bytes.data(), bytes.size());
  ASSERT_TRUE(m);
  EXPECT_EQ(m->id, 42u);
  EXPECT_EQ(m->status_text, "worker_lost");
  EXPECT_FALSE(decode_reply_meta("\x92\x01", 2));
  EXPECT_FALSE(decode_reply_meta("\x91\x01", 2));
}

TEST(Ready, RoundTripsAndIgnoresUnknownKeys) {
  ready_info info{"w-1", 99, 4, {"squares", "counter"}};
  std::string bytes;
  encode_ready(bytes, info);
  auto back = decode_ready(bytes.data(), bytes.size());
  ASSERT_TRUE(back);
  EXPECT_EQ(back->name, "w-1");
  EXPECT_EQ(back->pid, 99u);
  EXPECT_EQ(back->credits, 4u);
  EXPECT_EQ(back->actors, (std::vector<std::string>{"squares", "counter"}));

  // {"credits": 1, "actors": ["a"], "future": [1, {"x": 2}]}
  const char raw[] =
      "\x83\xa7"
      "credits\x01\xa6"
      "actors\x91\xa1"
      "a\xa6"
      "future\x92\x01\x81\xa1x\x02";
  const std::string extended(raw, sizeof raw - 1);
  auto ext = decode_ready(extended.data(), extended.size());
  ASSERT_TRUE(ext);
  EXPECT_EQ(ext->actors, std::vector<std::string>{"a"});
}

TEST(Ready, RejectsMissingOrInvalidFields) {
  auto bad = [](const std::string& b) { return !decode_ready(b.data(), b.size()); };
  EXPECT_TRUE(
      bad("\x81\xa7"
          "credits\x01"));  // no actors
  EXPECT_TRUE(
      bad(std::string("\x82\xa7"
                      "credits\x00\xa6"
                      "actors\x91\xa1"
                      "a",
                      20)));  // zero credits
  EXPECT_TRUE(
      bad("\x82\xa7"
          "credits\x01\xa6"
          "actors\x91\xa1$"));  // bad actor name
}

TEST(Address, SplitsAndValidates) {
  auto a = split_address("counter/alice/x");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->name, "counter");
  EXPECT_EQ(a->key, "alice/x");
  EXPECT_TRUE(split_address("squares"));
  EXPECT_TRUE(split_address("$broker"));
  EXPECT_FALSE(split_address(""));
  EXPECT_FALSE(split_address("counter/"));
  EXPECT_FALSE(split_address("/alice"));
  EXPECT_FALSE(split_address("has space"));
  EXPECT_FALSE(split_address(std::string(65, 'a')));
  EXPECT_FALSE(split_address("counter/" + std::string(256, 'k')));
}

TEST(Status, NamesAreStable) {
  const std::vector<std::string> expected = {
      "ok",         "unknown_actor",     "unknown_method", "bad_args",   "actor_error",
      "overloaded", "deadline_exceeded", "worker_lost",    "bad_request"};
  for (std::size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(to_string(static_cast<status>(i)), expected[i]);
    EXPECT_EQ(status_from_string(expected[i]), static_cast<status>(i));
  }
  EXPECT_FALSE(status_from_string("nope"));
}

// Random bytes never crash the decoders (and almost never parse).
TEST(Decoders, SurviveRandomInput) {
  std::mt19937 rng(12345);
  for (int i = 0; i < 20000; ++i) {
    std::string b(rng() % 64, '\0');
    for (auto& c : b) c = static_cast<char>(rng());
    if (!b.empty() && i % 2) b[0] = static_cast<char>(0x95);  // look like meta more often
    (void)decode_request_meta(b.data(), b.size());
    (void)decode_reply_meta(b.data(), b.size());
    (void)decode_ready(b.data(), b.size());
  }
}

// The shared vectors: our encoder produces exactly these bytes.
TEST(Vectors, MatchTheCppEncoder) {
  const std::map<std::string, std::vector<std::string>> expected = {
      {"request_ask", {hdr(command::request), request(7, "squares", "square", 0, 5000), "\x91\x07"}},
      {"request_tell", {hdr(command::request), request(8, "counter/alice", "add", 1, 0), "\x91\x05"}},
      {"request_to_worker", {hdr(command::request), request(7, "squares", "square", 0, 5000), "\x91\x07"}},
      {"request_management", {hdr(command::request), request(9, "$broker", "stats", 0, 0), "\x90"}},
      {"reply_ok", {hdr(command::reply), reply(7, "ok"), "\x31"}},
      {"reply_error_unknown_actor",
       {hdr(command::reply), reply(7, "unknown_actor"), str("no worker hosts actor 'nope'")}},
      {"reply_error_unknown_method",
       {hdr(command::reply), reply(7, "unknown_method"), str("actor 'squares' has no method 'nope'")}},
      {"reply_error_bad_args",
       {hdr(command::reply), reply(7, "bad_args"), str("expected 1 argument, got 2")}},
      {"reply_error_actor_error", {hdr(command::reply), reply(7, "actor_error"), str("boom")}},
      {"reply_error_overloaded",
       {hdr(command::reply), reply(7, "overloaded"), str("queue for 'squares' is full")}},
      {"reply_error_deadline_exceeded",
       {hdr(command::reply), reply(7, "deadline_exceeded"), str("timeout of 5000 ms passed")}},
      {"reply_error_worker_lost",
       {hdr(command::reply), reply(7, "worker_lost"), str("worker 'examples-worker-1' died")}},
      {"reply_error_bad_request",
       {hdr(command::reply), reply(7, "bad_request"), str("malformed request meta")}},
      {"heartbeat", {hdr(command::heartbeat)}},
      {"heartbeat_for_worker", {hdr(command::heartbeat), "w00000000deadbeef"}},
      {"disconnect", {hdr(command::disconnect)}},
  };
  for (const auto& [name, frames] : expected) EXPECT_EQ(read_vector(name), frames) << name;

  std::string ready;
  encode_ready(ready, {"examples-worker-1", 4242, 16, {"squares", "vectorize", "counter"}});
  EXPECT_EQ(read_vector("ready"), (std::vector<std::string>{hdr(command::ready), ready}));
}

// ...and our decoders read them back.
TEST(Vectors, DecodeWithTheCppDecoder) {
  auto ask = read_vector("request_ask");
  ASSERT_EQ(ask.size(), 3u);
  EXPECT_EQ(parse_header(ask[0].data(), ask[0].size()), command::request);
  auto m = decode_request_meta(ask[1].data(), ask[1].size());
  ASSERT_TRUE(m);
  EXPECT_EQ(m->address, "squares");
  auto err = read_vector("reply_error_worker_lost");
  auto r = decode_reply_meta(err[1].data(), err[1].size());
  ASSERT_TRUE(r);
  EXPECT_EQ(status_from_string(r->status_text), status::worker_lost);
  auto ready = read_vector("ready");
  auto info = decode_ready(ready[1].data(), ready[1].size());
  ASSERT_TRUE(info);
  EXPECT_EQ(info->credits, 16u);
}

}  // namespace
}  // namespace troupe::protocol
