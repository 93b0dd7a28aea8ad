// The wire codec: headers, meta frames, READY, addresses, and the shared
// test vectors in tests/vectors that the Python suite checks too.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>

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
  for (auto c : {command::request, command::reply, command::ready, command::heartbeat, command::disconnect,
                 command::release}) {
    const auto h = header(c);
    EXPECT_EQ(parse_header(h.data(), h.size()), c);
  }
}

TEST(Header, RejectsWrongSignatureVersionCommandAndSize) {
  EXPECT_FALSE(parse_header("TRQ\x01\x01", 5));
  EXPECT_FALSE(parse_header("TRP\x02\x01", 5));
  EXPECT_FALSE(parse_header("TRP\x01\x07", 5));
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
      "ok",          "unknown_actor",       "unknown_method",    "bad_args",
      "actor_error", "overloaded",          "deadline_exceeded", "worker_lost",
      "bad_request", "time_limit_exceeded", "store_unavailable", "call_cycle"};
  ASSERT_EQ(expected.size(), status_count);
  for (std::size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(to_string(static_cast<status>(i)), expected[i]);
    EXPECT_EQ(status_from_string(expected[i]), static_cast<status>(i));
  }
  EXPECT_FALSE(status_from_string("nope"));
}

// [id, "a", "m", flags, timeout] with each integer given as raw msgpack.
std::string meta_with(std::string_view id, std::string_view flags, std::string_view timeout) {
  return std::string("\x95") + std::string(id) +
         "\xa1"
         "a"
         "\xa1"
         "m" +
         std::string(flags) + std::string(timeout);
}

TEST(RequestMeta, AcceptsEveryIntegerEncodingOfANonNegativeValue) {
  using namespace std::string_literals;
  const std::vector<std::pair<std::string, std::uint64_t>> encodings = {
      {"\x07"s, 7},
      {"\xcc\x07"s, 7},
      {"\xcd\x00\x07"s, 7},
      {"\xce\x00\x00\x00\x07"s, 7},
      {"\xcf\x00\x00\x00\x00\x00\x00\x00\x07"s, 7},
      {"\xd0\x07"s, 7},
      {"\xd1\x00\x07"s, 7},
      {"\xd2\x00\x00\x00\x07"s, 7},
      {"\xd3\x00\x00\x00\x00\x00\x00\x00\x07"s, 7},
      {"\xd0\x7f"s, 127},
      {"\xd1\x7f\xff"s, 32767},
      {"\xd2\x7f\xff\xff\xff"s, 2147483647},
      {"\xd3\x7f\xff\xff\xff\xff\xff\xff\xff"s, 9223372036854775807ULL},
      {"\xcf\xff\xff\xff\xff\xff\xff\xff\xff"s, 18446744073709551615ULL},
      {"\xd0\x00"s, 0},
  };
  for (const auto& [bytes, value] : encodings) {
    // The same encoding in each integer field: id, flags, timeout_ms.
    for (int field = 0; field < 3; ++field) {
      const auto b =
          meta_with(field == 0 ? bytes : "\x01"s, field == 1 ? bytes : "\x00"s, field == 2 ? bytes : "\x00"s);
      auto m = decode_request_meta(b.data(), b.size());
      ASSERT_TRUE(m) << "field " << field << " encoding "
                     << static_cast<int>(static_cast<unsigned char>(bytes[0]));
      EXPECT_EQ(field == 0 ? m->id : field == 1 ? m->flags : m->timeout_ms, value);
    }
  }
}

TEST(RequestMeta, RejectsNegativeIntegersInEveryEncoding) {
  using namespace std::string_literals;
  for (const auto& negative :
       {"\xff"s, "\xe0"s, "\xd0\xff"s, "\xd0\x80"s, "\xd1\xff\xff"s, "\xd1\x80\x00"s, "\xd2\x80\x00\x00\x00"s,
        "\xd3\xff\xff\xff\xff\xff\xff\xff\xff"s, "\xd3\x80\x00\x00\x00\x00\x00\x00\x00"s}) {
    for (int field = 0; field < 3; ++field) {
      const auto b = meta_with(field == 0 ? negative : "\x01"s, field == 1 ? negative : "\x00"s,
                               field == 2 ? negative : "\x00"s);
      EXPECT_FALSE(decode_request_meta(b.data(), b.size())) << "field " << field;
    }
  }
  // Truncated signed encodings, and a float where an integer belongs.
  EXPECT_FALSE(decode_request_meta(std::string("\x95\xd3\x00\x00", 4).data(), 4));
  const auto as_float = meta_with("\xcb\x40\x1c\x00\x00\x00\x00\x00\x00"s, "\x00"s, "\x00"s);
  EXPECT_FALSE(decode_request_meta(as_float.data(), as_float.size()));
}

TEST(ReplyMeta, AcceptsSignedIdsAndRejectsNegativeOnesAndNonUtf8Status) {
  auto id_of = [](const std::string& b) -> std::optional<std::uint64_t> {
    auto m = decode_reply_meta(b.data(), b.size());
    return m ? std::optional(m->id) : std::nullopt;
  };
  EXPECT_EQ(id_of(std::string("\x92\xd3\0\0\0\0\0\0\0\x2a\xa2ok", 13)), 42u);
  EXPECT_EQ(id_of(std::string("\x92\xd0\x2a\xa2ok", 6)), 42u);
  EXPECT_EQ(id_of(std::string("\x92\xd1\x01\x00\xa2ok", 7)), 256u);
  EXPECT_FALSE(id_of(std::string("\x92\xd0\xd6\xa2ok", 6)));  // -42
  EXPECT_FALSE(id_of(std::string("\x92\x2a\xa2o\xff", 6)));   // status not UTF-8
}

TEST(Utf8, AcceptsWellFormedAndRejectsEverythingElse) {
  for (std::string_view ok :
       {"", "plain ascii", "caf\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\xed\x9f\xbf" /* U+D7FF */,
        "\xee\x80\x80" /* U+E000 */, "\xf4\x8f\xbf\xbf" /* U+10FFFF */, "\xc2\x80", "\xe0\xa0\x80",
        "\xf0\x90\x80\x80"})
    EXPECT_TRUE(valid_utf8(ok)) << ok;
  for (std::string_view bad : {
           "\xff",
           "\xfe",
           "\x80",  // never a lead byte
           "\xc0\xaf",
           "\xc1\xbf",  // overlong 2-byte
           "\xe0\x80\xaf",
           "\xe0\x9f\xbf",  // overlong 3-byte
           "\xf0\x80\x80\xaf",
           "\xf0\x8f\xbf\xbf",  // overlong 4-byte
           "\xed\xa0\x80",
           "\xed\xbf\xbf",  // surrogates
           "\xf4\x90\x80\x80",
           "\xf5\x80\x80\x80",  // above U+10FFFF
           "\xc3",
           "\xe2\x82",
           "\xf0\x9f\x98",  // truncated
           "\xc3\x28",
           "\xe2\x28\xa1",
           "a\xe2\x82\x28",  // bad continuation
       })
    EXPECT_FALSE(valid_utf8(bad)) << testing::PrintToString(std::string(bad));
}

TEST(Utf8, ReplacementKeepsGoodTextAndReplacesEachBadByte) {
  EXPECT_EQ(to_valid_utf8("caf\xc3\xa9"), "caf\xc3\xa9");
  EXPECT_EQ(to_valid_utf8("a\xff\xfe"
                          "b"),
            "a\xef\xbf\xbd\xef\xbf\xbd"
            "b");
  EXPECT_EQ(to_valid_utf8("\xe2\x82"), "\xef\xbf\xbd\xef\xbf\xbd");
  EXPECT_TRUE(valid_utf8(to_valid_utf8("\xed\xa0\x80\xc0\xaf\xf4\x90\x80\x80")));
}

TEST(Utf8, EncodeStrNeverWritesInvalidUtf8) {
  EXPECT_EQ(str("no method 'sq\xff'"), str("no method 'sq\xef\xbf\xbd'"));
  EXPECT_EQ(str("caf\xc3\xa9"), std::string("\xa5"
                                            "caf\xc3\xa9"));
}

TEST(Address, KeysAndMethodsMustBeUtf8) {
  EXPECT_TRUE(split_address("counter/caf\xc3\xa9"));
  EXPECT_TRUE(split_address("counter/\xf0\x9f\x98\x80"));
  EXPECT_FALSE(split_address("squares/\xff\xfe"));
  EXPECT_FALSE(split_address("counter/a\xc0\xaf"));
  EXPECT_FALSE(split_address("counter/\xed\xa0\x80"));
  EXPECT_FALSE(split_address("squ\xc3\xa9res"));  // names are ASCII only
  EXPECT_TRUE(valid_method_name("caf\xc3\xa9"));
  EXPECT_FALSE(valid_method_name("square\xed\xa0\x80"));
  EXPECT_FALSE(valid_method_name("\xff"));
}

// A READY map holding `entries` (already encoded key/value pairs).
std::string ready_map(const std::vector<std::string>& entries) {
  std::string out;
  const auto n = entries.size();
  if (n < 16) {
    out.push_back(static_cast<char>(0x80 | n));
  } else {
    out += "\xde";
    out.push_back(static_cast<char>(n >> 8));
    out.push_back(static_cast<char>(n & 0xff));
  }
  for (const auto& e : entries) out += e;
  return out;
}

std::string kv(std::string_view key, std::string_view encoded_value) {
  return str(key) + std::string(encoded_value);
}

// A msgpack str holding exactly these bytes, UTF-8 or not (encode_str
// would repair them), up to 255 bytes.
std::string raw_str(std::string_view bytes) {
  std::string out = "\xd9";
  out.push_back(static_cast<char>(bytes.size()));
  out.append(bytes);
  return out;
}

// An array32 of `count` distinct actor names a0, a1, ...
std::string actors_array(std::size_t count) {
  std::string out = "\xdd";
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>((count >> shift) & 0xff));
  for (std::size_t i = 0; i < count; ++i) {
    const auto digits = std::to_string(i);
    out.push_back(static_cast<char>(0xa0 | (1 + digits.size())));
    out.push_back('a');
    out.append(digits);
  }
  return out;
}

TEST(Ready, RejectsEveryRepeatedKey) {
  const std::map<std::string, std::string> fields = {{"name", str("w")},
                                                     {"pid", "\x01"},
                                                     {"credits", "\x01"},
                                                     {"actors",
                                                      "\x91\xa1"
                                                      "a"}};
  auto with = [&](const std::string& repeated) {
    std::vector<std::string> entries;
    for (const auto& [k, v] : fields) entries.push_back(kv(k, v));
    entries.push_back(kv(repeated, fields.at(repeated)));
    return ready_map(entries);
  };
  for (const auto& [key, value] : fields) {
    const auto b = with(key);
    EXPECT_FALSE(decode_ready(b.data(), b.size())) << key << " twice";
  }
  // Unknown keys are ignored, but not repeated.
  std::vector<std::string> entries;
  for (const auto& [k, v] : fields) entries.push_back(kv(k, v));
  entries.push_back(kv("future", "\x01"));
  entries.push_back(kv("other", "\x01"));
  const auto distinct = ready_map(entries);
  EXPECT_TRUE(decode_ready(distinct.data(), distinct.size()));
  entries.push_back(kv("future", "\x02"));
  const auto twice = ready_map(entries);
  EXPECT_FALSE(decode_ready(twice.data(), twice.size()));
}

// Fuzzing finding (issue 16): {"credits": 1, "actors": [10,000 names],
// "actors": ["b"]} registered 10,001 names; each array was within its bound.
TEST(Ready, RepeatedActorsCannotRegisterPastTheBound) {
  const auto at_bound = ready_map({kv("credits", "\x01"), kv("actors", actors_array(10000))});
  auto info = decode_ready(at_bound.data(), at_bound.size());
  ASSERT_TRUE(info);
  EXPECT_EQ(info->actors.size(), 10000u);

  const auto over = ready_map({kv("credits", "\x01"), kv("actors", actors_array(10001))});
  EXPECT_FALSE(decode_ready(over.data(), over.size()));

  const auto repeated = ready_map({kv("credits", "\x01"), kv("actors", actors_array(10000)),
                                   kv("actors",
                                      "\x91\xa1"
                                      "b")});
  EXPECT_FALSE(decode_ready(repeated.data(), repeated.size()));
}

TEST(Ready, NameMustBeOneTo128BytesOfUtf8AndIntegersNonNegative) {
  auto ready_named = [](std::string_view name) {
    return ready_map({kv("name", raw_str(name)), kv("credits", "\x01"),
                      kv("actors",
                         "\x91\xa1"
                         "a")});
  };
  for (const auto& ok : std::vector<std::string>{"w", "w\xc3\xa9", std::string(128, 'w')}) {
    const auto b = ready_named(ok);
    EXPECT_TRUE(decode_ready(b.data(), b.size())) << ok;
  }
  for (const auto& bad :
       {std::string(), std::string(129, 'w'), std::string("w\x80"), std::string("\xed\xa0\x80")}) {
    const auto b = ready_named(bad);
    EXPECT_FALSE(decode_ready(b.data(), b.size())) << bad.size() << " bytes";
  }
  using namespace std::string_literals;
  const auto signed_ok = ready_map({kv("pid", "\xd2\x00\x00\x10\x92"s), kv("credits", "\xd0\x10"),
                                    kv("actors",
                                       "\x91\xa1"
                                       "a")});
  auto info = decode_ready(signed_ok.data(), signed_ok.size());
  ASSERT_TRUE(info);
  EXPECT_EQ(info->pid, 4242u);
  EXPECT_EQ(info->credits, 16u);
  const auto negative = ready_map({kv("credits", "\xd0\xff"), kv("actors",
                                                                 "\x91\xa1"
                                                                 "a")});
  EXPECT_FALSE(decode_ready(negative.data(), negative.size()));
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
      {"reply_error_time_limit_exceeded",
       {hdr(command::reply), reply(7, "time_limit_exceeded"),
        str("squares.square_slowly ran past its time limit of 5000 ms; its process was replaced")}},
      {"disconnect_worker_gone", {hdr(command::disconnect), "w00000000deadbeef"}},
      {"heartbeat", {hdr(command::heartbeat)}},
      {"heartbeat_for_worker", {hdr(command::heartbeat), "w00000000deadbeef"}},
      {"disconnect", {hdr(command::disconnect)}},
      {"disconnect_refused", {hdr(command::disconnect), str("READY credits must be an int in 1..100000")}},
  };
  for (const auto& [name, frames] : expected) EXPECT_EQ(read_vector(name), frames) << name;

  std::string ready;
  encode_ready(ready, {"examples-worker-1", 4242, 16, {"squares", "vectorize", "counter"}});
  EXPECT_EQ(read_vector("ready"), (std::vector<std::string>{hdr(command::ready), ready}));
  std::string ack;
  encode_ready_ack(ack, {1000, 3});
  EXPECT_EQ(read_vector("ready_ack"), (std::vector<std::string>{hdr(command::ready), ack}));
  std::string info;
  encode_disconnect_info(info, {7, "ran past its time limit of 5000 ms"});
  EXPECT_EQ(read_vector("disconnect_time_limit"),
            (std::vector<std::string>{hdr(command::disconnect), "w00000000deadbeef", info}));
  std::string release;
  encode_release(release, {"counter/alice", "counter/bob"});
  EXPECT_EQ(read_vector("release"), (std::vector<std::string>{hdr(command::release), release}));
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
  auto ack_frames = read_vector("ready_ack");
  auto ack = decode_ready_ack(ack_frames[1].data(), ack_frames[1].size());
  ASSERT_TRUE(ack);
  EXPECT_EQ(ack->heartbeat_ms, 1000u);
  EXPECT_EQ(ack->liveness, 3u);
  EXPECT_FALSE(decode_ready_ack(ready[1].data(), ready[1].size()))
      << "a worker's READY is no acknowledgement";
  auto gone = read_vector("disconnect_time_limit");
  ASSERT_EQ(gone.size(), 3u);
  auto gone_info = decode_disconnect_info(gone[2].data(), gone[2].size());
  ASSERT_TRUE(gone_info);
  EXPECT_EQ(gone_info->stuck, 7u);
  EXPECT_EQ(gone_info->why, "ran past its time limit of 5000 ms");
  auto release = read_vector("release");
  ASSERT_EQ(release.size(), 2u);
  EXPECT_EQ(parse_header(release[0].data(), release[0].size()), command::release);
  auto addresses = decode_release(release[1].data(), release[1].size());
  ASSERT_TRUE(addresses);
  EXPECT_EQ(*addresses, (std::vector<std::string_view>{"counter/alice", "counter/bob"}));
}

// DISCONNECT info and RELEASE: the bounds of docs/protocol.md.
TEST(DisconnectInfo, OptionalKeysWithinBounds) {
  std::string b;
  encode_disconnect_info(b, {});
  EXPECT_EQ(b, "\x80");  // nothing set: an empty map
  auto none = decode_disconnect_info(b.data(), b.size());
  ASSERT_TRUE(none);
  EXPECT_EQ(none->stuck, 0u);
  EXPECT_TRUE(none->why.empty());
  // A `why` over 256 bytes is cut (and kept UTF-8) by the encoder...
  encode_disconnect_info(b, {0, std::string(300, 'x') + "\xff"});
  auto cut = decode_disconnect_info(b.data(), b.size());
  ASSERT_TRUE(cut);
  EXPECT_LE(cut->why.size(), 256u);
  // ...and refused by the decoder; so are stuck 0, a non-map and unknown keys twice.
  const std::string long_why = "\x81\xa3why\xda\x01\x01" + std::string(257, 'x');
  EXPECT_FALSE(decode_disconnect_info(long_why.data(), long_why.size()));
  EXPECT_FALSE(decode_disconnect_info("\x81\xa5stuck\x00", 8));
  EXPECT_FALSE(decode_disconnect_info("\x91\x07", 2));
  EXPECT_FALSE(decode_disconnect_info("\x82\xa1z\x01\xa1z\x02", 7));
  EXPECT_TRUE(decode_disconnect_info("\x81\xa1z\x01", 4)) << "unknown keys are ignored";
}

TEST(Release, OneToTenThousandStrings) {
  std::string b;
  encode_release(b, std::vector<std::string>(max_release_addresses, "counter/k"));
  EXPECT_TRUE(decode_release(b.data(), b.size()));
  encode_release(b, std::vector<std::string>(max_release_addresses + 1, "counter/k"));
  EXPECT_FALSE(decode_release(b.data(), b.size()));
  EXPECT_FALSE(decode_release("\x90", 1)) << "empty";
  EXPECT_FALSE(decode_release("\xa1x", 2)) << "not an array";
  EXPECT_FALSE(decode_release("\x91\xa1x\xc0", 4)) << "trailing bytes";
}

// A refused READY says why, in words a worker's log can show.
TEST(Ready, RefusalsSayWhy) {
  auto why = [](const std::string& bytes) {
    std::string reason;
    EXPECT_FALSE(decode_ready(bytes.data(), bytes.size(), &reason));
    return reason;
  };
  EXPECT_EQ(why("\x90"), "READY info must be a map");
  // Keys and values spelled as msgpack: a7 = str of 7 bytes, a6 = 6, 91 = array of 1.
  const std::string credits =
                        "\xa7"
                        "credits",
                    actors =
                        "\xa6"
                        "actors";
  EXPECT_EQ(why("\x81" + credits + std::string(1, '\0')), "READY credits must be an int in 1..100000");
  EXPECT_EQ(why("\x81" + credits + "\x01"), "READY info lacks 'actors'");
  EXPECT_EQ(why("\x82" + credits + "\x01" + actors +
                "\x91\xa4"
                "$bad"),
            "READY actor name '$bad' is not 1..64 bytes of [A-Za-z0-9_.-]");
  EXPECT_EQ(why("\x83" + credits + "\x01" + actors +
                "\x91\xa1"
                "a" +
                credits + "\x01"),
            "READY info has the key 'credits' twice");
}

// The accept_* vectors (integers in wider or signed encodings) and the
// shortest-form vector each must decode to the same message as.
const std::map<std::string, std::string> accept_vectors = {
    {"accept_request_uint8", "request_tell"}, {"accept_request_int8", "request_tell"},
    {"accept_request_uint16", "request_ask"}, {"accept_request_uint32", "request_ask"},
    {"accept_request_uint64", "request_ask"}, {"accept_request_int16", "request_ask"},
    {"accept_request_int32", "request_ask"},  {"accept_request_int64", "request_ask"},
    {"accept_request_mixed", "request_ask"},  {"accept_reply_uint8", "reply_ok"},
    {"accept_reply_uint16", "reply_ok"},      {"accept_reply_uint32", "reply_ok"},
    {"accept_reply_uint64", "reply_ok"},      {"accept_reply_int8", "reply_ok"},
    {"accept_reply_int16", "reply_ok"},       {"accept_reply_int32", "reply_ok"},
    {"accept_reply_int64", "reply_ok"},       {"accept_ready_signed_ints", "ready"},
};

// The reject_* vectors and how a REQUEST among them is refused: its meta
// cannot be read (bad_request with id 0), or it can and its address or
// method is malformed (bad_request with the request's id).
enum class refusal { meta_unreadable, bad_address, bad_method, malformed };
const std::map<std::string, refusal> reject_vectors = {
    {"reject_request_negative_id", refusal::meta_unreadable},
    {"reject_request_negative_flags", refusal::meta_unreadable},
    {"reject_request_negative_timeout", refusal::meta_unreadable},
    {"reject_request_address_not_utf8", refusal::bad_address},
    {"reject_request_key_overlong_utf8", refusal::bad_address},
    {"reject_request_method_not_utf8", refusal::bad_method},
    {"reject_reply_negative_id", refusal::malformed},
    {"reject_reply_status_not_utf8", refusal::malformed},
    {"reject_ready_repeated_actors", refusal::malformed},
    {"reject_ready_repeated_unknown_key", refusal::malformed},
    {"reject_ready_name_not_utf8", refusal::malformed},
    {"reject_ready_negative_credits", refusal::malformed},
    {"reject_disconnect_negative_stuck", refusal::malformed},
    {"reject_disconnect_repeated_why", refusal::malformed},
    {"reject_request_durable_without_id", refusal::meta_unreadable},
    {"reject_request_durable_id_too_long", refusal::meta_unreadable},
    {"reject_request_durable_repeated_id", refusal::meta_unreadable},
    {"reject_request_chain_empty", refusal::meta_unreadable},
    {"reject_request_chain_too_long", refusal::meta_unreadable},
    {"reject_request_chain_bad_link", refusal::meta_unreadable},
    {"reject_request_chain_sixth_not_nil", refusal::meta_unreadable},
    {"reject_ready_key_not_keyed", refusal::malformed},
    {"reject_ready_retry_zero_attempts", refusal::malformed},
    {"reject_release_not_str", refusal::malformed},
    {"reject_release_not_utf8", refusal::malformed},
};

TEST(Vectors, EveryAcceptAndRejectVectorIsChecked) {
  std::set<std::string> on_disk, known;
  for (const auto& entry : std::filesystem::directory_iterator(TROUPE_VECTORS_DIR)) {
    const auto stem = entry.path().stem().string();
    if (entry.path().extension() == ".hex" && (stem.starts_with("accept_") || stem.starts_with("reject_")))
      on_disk.insert(stem);
  }
  for (const auto& [name, twin] : accept_vectors) known.insert(name);
  for (const auto& [name, how] : reject_vectors) known.insert(name);
  EXPECT_EQ(on_disk, known);
}

TEST(Vectors, AcceptVectorsDecodeLikeTheirShortestForm) {
  for (const auto& [name, twin_name] : accept_vectors) {
    SCOPED_TRACE(name);
    const auto v = read_vector(name);
    const auto twin = read_vector(twin_name);
    ASSERT_EQ(v.size(), twin.size());
    ASSERT_EQ(v[0], twin[0]);
    EXPECT_NE(v[1], twin[1]);  // a different encoding...
    switch (*parse_header(v[0].data(), v[0].size())) {
      case command::request: {  // ...of the same values
        auto m = decode_request_meta(v[1].data(), v[1].size());
        auto t = decode_request_meta(twin[1].data(), twin[1].size());
        ASSERT_TRUE(m && t);
        EXPECT_EQ(std::tie(m->id, m->address, m->method, m->flags, m->timeout_ms),
                  std::tie(t->id, t->address, t->method, t->flags, t->timeout_ms));
        EXPECT_EQ(v[2], twin[2]);
        break;
      }
      case command::reply: {
        auto m = decode_reply_meta(v[1].data(), v[1].size());
        auto t = decode_reply_meta(twin[1].data(), twin[1].size());
        ASSERT_TRUE(m && t);
        EXPECT_EQ(std::tie(m->id, m->status_text), std::tie(t->id, t->status_text));
        EXPECT_EQ(v[2], twin[2]);
        break;
      }
      case command::ready: {
        auto m = decode_ready(v[1].data(), v[1].size());
        auto t = decode_ready(twin[1].data(), twin[1].size());
        ASSERT_TRUE(m && t);
        EXPECT_EQ(std::tie(m->name, m->pid, m->credits, m->actors),
                  std::tie(t->name, t->pid, t->credits, t->actors));
        break;
      }
      default:
        ADD_FAILURE() << "unexpected command";
    }
  }
}

TEST(Vectors, RejectVectorsAreRefused) {
  for (const auto& [name, how] : reject_vectors) {
    SCOPED_TRACE(name);
    const auto v = read_vector(name);
    ASSERT_GE(v.size(), 2u);
    switch (*parse_header(v[0].data(), v[0].size())) {
      case command::request: {
        auto m = decode_request_meta(v[1].data(), v[1].size());
        if (how == refusal::meta_unreadable) {
          EXPECT_FALSE(m);
          break;
        }
        ASSERT_TRUE(m);
        EXPECT_EQ(m->id, 7u);  // readable, so the broker answers this id
        EXPECT_EQ(!split_address(m->address), how == refusal::bad_address);
        EXPECT_EQ(!valid_method_name(m->method), how == refusal::bad_method);
        break;
      }
      case command::reply:
        EXPECT_FALSE(decode_reply_meta(v[1].data(), v[1].size()));
        break;
      case command::ready:
        EXPECT_FALSE(decode_ready(v[1].data(), v[1].size()));
        break;
      case command::disconnect:
        ASSERT_EQ(v.size(), 3u);
        EXPECT_FALSE(decode_disconnect_info(v[2].data(), v[2].size()));
        break;
      case command::release:
        EXPECT_FALSE(decode_release(v[1].data(), v[1].size()));
        break;
      default:
        ADD_FAILURE() << "unexpected command";
    }
  }
}

// Durable messages (docs/protocol.md, "Durable messages"): our encoders
// write the vectors' bytes, and our decoders read them back.
TEST(Vectors, DurableMessagesMatchTheCppEncoderAndDecoder) {
  auto durable_meta = [](std::uint64_t id, std::string_view address, std::string_view method,
                         std::uint64_t flags, std::uint64_t timeout, std::string_view mid,
                         std::uint64_t delay, std::uint64_t delivery) {
    request_meta m{id, address, method, flags, timeout};
    m.has_durable = true;
    m.message_id = mid;
    m.delay_ms = delay;
    m.delivery = delivery;
    std::string out;
    encode_request_meta(out, m);
    return out;
  };
  const std::string tell_id = "0f1e2d3c4b5a69780000000000000001";
  EXPECT_EQ(
      read_vector("request_durable_tell"),
      (std::vector<std::string>{hdr(command::request),
                                durable_meta(10, "counter/alice", "add", 3, 0, tell_id, 0, 0), "\x91\x05"}));
  EXPECT_EQ(read_vector("request_durable_delayed")[1],
            durable_meta(11, "mailer", "send", 3, 0, "order-1234", 30000, 0));
  EXPECT_EQ(read_vector("request_durable_ask")[1],
            durable_meta(12, "squares", "square", 2, 5000, "ask-12", 0, 0));
  EXPECT_EQ(read_vector("request_durable_to_worker")[1],
            durable_meta(7, "counter/alice", "add", 3, 60000, tell_id, 0, 2));
  EXPECT_EQ(read_vector("reply_durable_confirmed"),
            (std::vector<std::string>{hdr(command::reply), reply(10, "ok"), "\xc0"}));
  EXPECT_EQ(read_vector("reply_error_store_unavailable")[1], reply(7, "store_unavailable"));

  const auto to_worker = read_vector("request_durable_to_worker");
  const auto m = decode_request_meta(to_worker[1].data(), to_worker[1].size());
  ASSERT_TRUE(m);
  EXPECT_TRUE(m->is_durable() && m->is_tell() && m->has_durable);
  EXPECT_EQ(m->message_id, tell_id);
  EXPECT_EQ(m->delivery, 2u);
  const auto delayed = read_vector("request_durable_delayed");
  EXPECT_EQ(decode_request_meta(delayed[1].data(), delayed[1].size())->delay_ms, 30000u);

  ready_info info{"examples-worker-1",
                  4242,
                  16,
                  {"squares", "counter"},
                  {"counter/alice", "counter/bob"},
                  {retry_policy{"counter", "add", 3, 1000, 60000, {"actor_error", "worker_lost"}}}};
  std::string ready;
  encode_ready(ready, info);
  EXPECT_EQ(read_vector("ready_with_keys"), (std::vector<std::string>{hdr(command::ready), ready}));
  const auto back = decode_ready(ready.data(), ready.size());
  ASSERT_TRUE(back);
  EXPECT_EQ(back->keys, info.keys);
  ASSERT_EQ(back->retry.size(), 1u);
  EXPECT_EQ(back->retry[0].attempts, 3u);
  EXPECT_EQ(back->retry[0].on, info.retry[0].on);
  const auto for_worker = read_vector("ready_for_worker");
  ASSERT_EQ(for_worker.size(), 3u);
  EXPECT_EQ(for_worker[2], "w00000000deadbeef");
  EXPECT_TRUE(decode_ready(for_worker[1].data(), for_worker[1].size()));
  std::string release;
  encode_release(release, {"counter/alice"});
  EXPECT_EQ(read_vector("release_to_worker"), (std::vector<std::string>{hdr(command::release), release}));
}

}  // namespace
}  // namespace troupe::protocol

namespace troupe::protocol {
namespace {

// Call chains (docs/protocol.md, "Call chains"): our encoder writes the
// vectors' bytes, our decoder reads them back, and a 5- or 6-element meta
// from an older peer is unchanged.
TEST(Vectors, ChainedRequestsMatchTheCppEncoderAndDecoder) {
  auto chained = [](std::uint64_t id, std::string_view address, std::string_view method,
                    std::uint64_t timeout, const std::vector<chain_link>& links) {
    std::string chain, out;
    encode_chain(chain, links);
    request_meta m{id, address, method, 0, timeout};
    m.chain = chain;
    encode_request_meta(out, m);
    return out;
  };
  EXPECT_EQ(read_vector("request_chained"),
            (std::vector<std::string>{hdr(command::request),
                                      chained(12, "ledger/b", "add", 5000, {{"counter/a", 7}}), "\x91\x05"}));
  const auto to_worker = read_vector("request_chained_to_worker");
  EXPECT_EQ(to_worker[1], chained(9, "squares", "square", 4000, {{"relay/a", 7}, {"relay/b", 8}}));
  const auto m = decode_request_meta(to_worker[1].data(), to_worker[1].size());
  ASSERT_TRUE(m);
  EXPECT_FALSE(m->has_durable);
  const auto links = decode_chain(m->chain);
  ASSERT_EQ(links.size(), 2u);
  EXPECT_EQ(links[1].address, "relay/b");
  EXPECT_EQ(links[1].id, 8u);
  EXPECT_EQ(describe_chain(links, "relay/a"), "relay/a -> relay/b -> relay/a");
  // Re-encoding forwards the chain byte for byte.
  std::string again;
  encode_request_meta(again, *m);
  EXPECT_EQ(again, to_worker[1]);
  EXPECT_EQ(read_vector("reply_error_call_cycle")[1], reply(7, "call_cycle"));
  // Older peers' metas have no chain.
  const auto plain = read_vector("request_ask");
  EXPECT_TRUE(decode_request_meta(plain[1].data(), plain[1].size())->chain.empty());
}

TEST(Chain, ADurableChainedRequestKeepsBothElementsAndBoundsAreChecked) {
  std::string chain, out;
  encode_chain(chain, {{"counter/a", 3}});
  request_meta m{5, "ledger/b", "add", flag_durable, 100};
  m.has_durable = true;
  m.message_id = "m-1";
  m.chain = chain;
  encode_request_meta(out, m);
  const auto back = decode_request_meta(out.data(), out.size());
  ASSERT_TRUE(back);
  EXPECT_EQ(back->message_id, "m-1");
  EXPECT_EQ(decode_chain(back->chain).at(0).id, 3u);
  // The longest chain is accepted, one more link is not.
  std::vector<chain_link> longest(max_chain_length, {"relay", 1});
  encode_chain(chain, longest);
  m = {5, "relay", "forward", 0, 100};
  m.chain = chain;
  encode_request_meta(out, m);
  ASSERT_TRUE(decode_request_meta(out.data(), out.size()));
  longest.push_back({"relay", 1});
  encode_chain(chain, longest);
  m.chain = chain;
  encode_request_meta(out, m);
  EXPECT_FALSE(decode_request_meta(out.data(), out.size()));
  // Trailing bytes after the chain, or a link of three elements, are malformed.
  encode_chain(chain, {{"relay", 1}});
  m.chain = chain;
  encode_request_meta(out, m);
  EXPECT_FALSE(decode_request_meta((out + "\xc0").data(), out.size() + 1));
  std::string odd = out;
  odd[odd.size() - chain.size() + 1] = '\x93';
  EXPECT_FALSE(decode_request_meta(odd.data(), odd.size()));
}

}  // namespace
}  // namespace troupe::protocol
