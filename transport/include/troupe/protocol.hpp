// The troupe wire protocol, version 1: frame layout, commands, error codes
// and limits. docs/protocol.md is the specification; this header is its
// C++ form, shared by the broker, the client and the worker runtime.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace troupe::protocol {

inline constexpr std::uint8_t version = 1;
inline constexpr std::size_t header_size = 5;

enum class command : std::uint8_t {
  request = 0x01,
  reply = 0x02,
  ready = 0x03,
  heartbeat = 0x04,
  disconnect = 0x05,
  release = 0x06,  // worker -> broker: keyed instances it passivated (docs/protocol.md, RELEASE)
};

// The 5-byte first frame of every message: "TRP", version, command.
std::array<char, header_size> header(command c);
// The command of a header frame, or nullopt for a bad signature, version
// or command byte.
std::optional<command> parse_header(const void* data, std::size_t size);

// Error codes travel as strings in REPLY.status and are stable.
enum class status : std::uint8_t {
  ok,
  unknown_actor,
  unknown_method,
  bad_args,
  actor_error,
  overloaded,
  deadline_exceeded,
  worker_lost,
  bad_request,
  time_limit_exceeded,  // the method ran past its time limit; its process was replaced
  store_unavailable,    // a durable message could not be stored (no store, or it cannot be written)
  call_cycle,           // the request would wait on an instance already waiting up its own call chain
};
inline constexpr std::size_t status_count = 12;

std::string_view to_string(status s);
std::optional<status> status_from_string(std::string_view s);

// REQUEST.flags
inline constexpr std::uint64_t flag_tell = 1;
inline constexpr std::uint64_t flag_durable = 2;  // kept in the broker's store; meta has a 6th element

// The call chain of a request made from inside a method (docs/protocol.md,
// "Call chains"): REQUEST meta's 7th element, an array of 1..max_chain_length
// links, outermost caller first. A link names an instance that waits for
// this request: its address and the broker's id of the request it runs.
inline constexpr std::size_t max_chain_length = 64;
struct chain_link {
  std::string_view address;
  std::uint64_t id = 0;  // the broker's request id the instance runs; 0: unknown
};

// Reserved address of the broker's built-in management actor.
inline constexpr std::string_view management_actor = "$broker";

struct limits {
  std::size_t max_message_bytes = 1 << 20;  // largest frame
  std::size_t max_depth = 32;               // msgpack nesting
  static constexpr std::size_t max_name_bytes = 64;
  static constexpr std::size_t max_key_bytes = 255;
  static constexpr std::size_t max_method_bytes = 128;
};

// REQUEST meta. Views point into the frame they were parsed from.
struct request_meta {
  std::uint64_t id = 0;
  std::string_view address;
  std::string_view method;
  std::uint64_t flags = 0;
  std::uint64_t timeout_ms = 0;

  // Durable messages (docs/protocol.md, "Durable messages"): the 6th meta
  // element, present exactly when has_durable.
  bool has_durable = false;
  std::string_view message_id{};  // the client's message id, 1..128 bytes
  std::uint64_t delay_ms = 0;     // client -> broker: not before receipt + delay
  std::uint64_t delivery = 0;     // broker -> worker: 1 for the first delivery

  // The call chain: the 7th meta element's encoded bytes (a msgpack array,
  // already checked; read it with decode_chain), empty when there is none.
  // With a chain the 6th element is the durable map, or nil.
  std::string_view chain{};

  bool is_tell() const { return (flags & flag_tell) != 0; }
  bool is_durable() const { return (flags & flag_durable) != 0; }
};

// A method's retry policy for durable messages, sent in READY `retry`.
struct retry_policy {
  std::string actor;
  std::string method;
  std::uint32_t attempts = 1;  // runs at most, 1..1000
  std::uint64_t backoff_ms = 0;
  std::uint64_t max_backoff_ms = 0;
  std::vector<std::string> on;  // error codes that are retried
};
inline constexpr std::size_t max_message_id_bytes = 128;
inline constexpr std::uint64_t max_delay_ms = 31'536'000'000;  // a year
inline constexpr std::size_t max_ready_keys = 100000;

// REPLY meta. `status_text` is kept as text so that a reply can be forwarded
// without knowing every code a newer peer might send.
struct reply_meta {
  std::uint64_t id = 0;
  std::string_view status_text;
};

struct ready_info {
  std::string name;
  std::uint64_t pid = 0;
  std::uint64_t credits = 0;
  std::vector<std::string> actors;
  std::vector<std::string> keys{};    // keyed addresses whose instances it holds (may be empty)
  std::vector<retry_policy> retry{};  // its methods' retry policies (may be empty)
};

// READY from the broker: the acknowledgement of a worker's READY, with the
// liveness settings the worker must use from then on.
struct ready_ack {
  std::uint64_t heartbeat_ms = 0;  // 1..3600000
  std::uint64_t liveness = 0;      // 1..100
};

// The optional second body frame of a DISCONNECT that a pool supervisor
// sends for one of its worker processes (the first frame names the process's
// work socket): why it is gone, and which request it was stuck in when it
// was killed for running past its time limit.
struct disconnect_info {
  std::uint64_t stuck = 0;  // the broker's request id; 0: none
  std::string why;          // for logs and the `worker_lost` messages; may be empty
};

// Most addresses in one RELEASE.
inline constexpr std::size_t max_release_addresses = 10000;

// An address split at its first '/'.
struct address_parts {
  std::string_view name;
  std::string_view key;  // empty for an unkeyed address
};

// Splits and validates an address; nullopt when it breaks the rules of
// docs/protocol.md (empty, too long, bad characters in the name, empty key,
// a key that is not UTF-8).
std::optional<address_parts> split_address(std::string_view address);
bool valid_actor_name(std::string_view name);
// 1..128 bytes of UTF-8.
bool valid_method_name(std::string_view method);

// Whether `text` is well-formed UTF-8 (RFC 3629: no overlong forms, no
// surrogates, nothing above U+10FFFF). Every `str` of the protocol must be.
bool valid_utf8(std::string_view text);
// `text` with every byte that is not part of well-formed UTF-8 replaced by
// U+FFFD, for echoing untrusted text in an error message or a log line.
std::string to_valid_utf8(std::string_view text);

// Decoders return nullopt for anything that does not match the spec exactly
// (wrong types, wrong element count, trailing bytes, a repeated map key, a
// negative integer). Integers may come in any MessagePack integer encoding.
// decode_request_meta leaves the address and the method to split_address and
// valid_method_name, so that a malformed one can still be answered by id;
// the READY name and the REPLY status must be UTF-8.
std::optional<request_meta> decode_request_meta(const void* data, std::size_t size);
std::optional<reply_meta> decode_reply_meta(const void* data, std::size_t size);
// `why`, when given, receives the reason a READY is refused, in words a
// worker's log can show ("credits must be an int in 1..100000").
std::optional<ready_info> decode_ready(const void* data, std::size_t size, std::string* why = nullptr);
std::optional<ready_ack> decode_ready_ack(const void* data, std::size_t size);
// DISCONNECT `info`: a map with the optional keys `stuck` (uint, not 0) and
// `why` (str of 1..256 bytes of UTF-8), each at most once; unknown keys are
// ignored.
std::optional<disconnect_info> decode_disconnect_info(const void* data, std::size_t size);
// RELEASE `addresses`: an array of 1..max_release_addresses str of UTF-8.
// Returns views into `data`; whether each is a keyed address is the
// caller's check (one bad address does not spoil the others).
std::optional<std::vector<std::string_view>> decode_release(const void* data, std::size_t size);

// The links of a chain decode_request_meta has checked (request_meta::chain):
// views into it, outermost first. Empty for an empty or unreadable chain.
std::vector<chain_link> decode_chain(std::string_view chain);
// `links` as a 7th meta element (a msgpack array of [address, id]) in `out`,
// cleared first; request_meta::chain may then view it.
void encode_chain(std::string& out, const std::vector<chain_link>& links);
// "counter/a -> ledger/b -> counter/a": the chain's addresses and `target`,
// for error messages; each address made valid UTF-8.
std::string describe_chain(const std::vector<chain_link>& links, std::string_view target);

// Small encoders. `out` is cleared first; its capacity is reused, so a
// caller that keeps the buffer does no allocation per message.
void encode_request_meta(std::string& out, const request_meta& meta);
void encode_reply_meta(std::string& out, std::uint64_t id, std::string_view status_text);
void encode_ready(std::string& out, const ready_info& info);
void encode_ready_ack(std::string& out, const ready_ack& ack);
// Writes only the keys that are set (`stuck` not 0, `why` not empty).
void encode_disconnect_info(std::string& out, const disconnect_info& info);
void encode_release(std::string& out, const std::vector<std::string>& addresses);
// A msgpack str holding `text` (error messages in REPLY.value); bytes that
// are not UTF-8 are replaced (see to_valid_utf8), so an echoed user string
// can never make the message itself malformed.
void encode_str(std::string& out, std::string_view text);

}  // namespace troupe::protocol
