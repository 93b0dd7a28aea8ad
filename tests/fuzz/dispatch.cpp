// The worker's dispatch (troupe::dispatcher) with the example actors of
// examples/actors/ compiled in, plus a probe actor of this harness that
// counts its constructions and destructions. The input is a program of
// calls (address, method, args) and destroy_all()s.
//
// Invariants:
// - every call returns a status and a value that is one well-formed msgpack
//   value within the depth limit; an error's value is a UTF-8 str;
// - a malformed address is bad_request, a well-formed unknown name
//   unknown_actor;
// - results are right, not only well-formed: squares.square(x) is x*x and
//   counter/<key>.add keeps a running total, both checked against 128-bit
//   arithmetic: a result that does not fit int64 must be an error, never a
//   wrapped value (issue 16, finding 4); echo returns its argument's value;
//   vectorize.apply is the documented kernel elementwise;
// - one instance per address: a probe answers with the serial of its
//   construction, the same until destroy_all;
// - destroy_all destroys each instance exactly once and leaves none live.
#include <cstring>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "fuzz_support.hpp"
#include "troupe/actor.hpp"
#include "troupe/dispatch.hpp"
#include "troupe/registry.hpp"

namespace {

using troupe::protocol::status;

// ---- the probe actor --------------------------------------------------------

std::set<const void*> live_probes;
std::uint64_t probes_built = 0;

class probe {
 public:
  explicit probe(const troupe::context& ctx) : serial_(++probes_built) {
    if (ctx.key() == "bad") throw std::runtime_error("probe/bad refuses to be built");
    live_probes.insert(this);
  }
  ~probe() { FUZZ_CHECK(live_probes.erase(this) == 1, "a probe was destroyed twice, or never built"); }
  probe(const probe&) = delete;
  probe& operator=(const probe&) = delete;

  std::uint64_t serial() const { return serial_; }
  void boom(const std::string& message) const { throw std::runtime_error(message); }

 private:
  std::uint64_t serial_;
};

const troupe::actor<probe> probe_actor{"probe", troupe::method("serial", &probe::serial),
                                       troupe::method("boom", &probe::boom)};

// ---- input -> calls -----------------------------------------------------------

constexpr std::string_view addresses[] = {"squares", "counter",   "counter/a", "counter/b", "echo",
                                          "echo/x",  "vectorize", "probe",     "probe/k",   "probe/bad",
                                          "nobody",  "bad name!", "counter/",  "$broker"};
constexpr std::string_view methods[] = {"square", "add",    "get",  "echo", "fail", "whoami",
                                        "apply",  "serial", "boom", "nope", ""};

void pack_value(troupe::fuzz::input& in, msgpack::packer<troupe::value_buffer>& pk) {
  switch (in.pick(8)) {
    case 0:
      pk.pack(static_cast<std::int64_t>(in.u64()));
      break;
    case 1:
      pk.pack(in.u64());
      break;
    case 2: {
      const auto bits = in.u64();
      double d;
      std::memcpy(&d, &bits, sizeof d);
      pk.pack(d);
      break;
    }
    case 3:
      pk.pack(in.short_bytes(40));
      break;
    case 4:
      pk.pack_nil();
      break;
    case 5:
      pk.pack(in.flag());
      break;
    case 6: {
      const auto n = in.pick(5);
      pk.pack_array(static_cast<std::uint32_t>(n));
      for (std::size_t i = 0; i < n; ++i)
        pk.pack(static_cast<double>(static_cast<std::int16_t>(in.u16())) / 4);
      break;
    }
    default:
      pk.pack(static_cast<std::int8_t>(in.u8()));
      break;
  }
}

std::string make_args(troupe::fuzz::input& in) {
  switch (in.pick(3)) {
    case 0:  // raw bytes: anything at all
      return std::string(in.long_bytes(512));
    case 1: {  // a well-formed array of a few typed values
      troupe::value_buffer buf;
      msgpack::packer<troupe::value_buffer> pk(buf);
      const auto n = in.pick(4);
      pk.pack_array(static_cast<std::uint32_t>(n));
      for (std::size_t i = 0; i < n; ++i) pack_value(in, pk);
      return {buf.data(), buf.size()};
    }
    default:  // one int64: the arithmetic methods' argument
    {
      troupe::value_buffer buf;
      msgpack::packer<troupe::value_buffer> pk(buf);
      pk.pack_array(1);
      pk.pack(static_cast<std::int64_t>(in.u64()));
      return {buf.data(), buf.size()};
    }
  }
}

// ---- checks -----------------------------------------------------------------

// 128-bit integers hold every sum and product of two int64 exactly.
__extension__ using int128 = __int128;

bool fits_int64(int128 v) { return v >= INT64_MIN && v <= INT64_MAX; }

// The arguments as msgpack-c sees them, when they are an array of n.
const msgpack::object* args_of(const msgpack::object_handle& h, std::uint32_t n) {
  const auto& o = h.get();
  if (o.type != msgpack::type::ARRAY || o.via.array.size != n) return nullptr;
  return o.via.array.ptr;
}

std::optional<std::int64_t> as_int64(const msgpack::object& o) {
  if (o.type == msgpack::type::POSITIVE_INTEGER && o.via.u64 <= INT64_MAX)
    return static_cast<std::int64_t>(o.via.u64);
  if (o.type == msgpack::type::NEGATIVE_INTEGER) return o.via.i64;
  return std::nullopt;
}

struct model {
  std::map<std::string, int128> totals;          // counter instances by address
  std::map<std::string, std::uint64_t> serials;  // probe instances by address
};

void check_result(model& m, std::string_view address, std::string_view method, const std::string& args,
                  status st, const std::string& out) {
  using troupe::fuzz::hex;
  const auto parts = troupe::protocol::split_address(address);
  if (!parts) FUZZ_CHECK(st == status::bad_request, "a malformed address was not bad_request");
  if (st != status::ok) {
    // An error's value is a str with a message, in UTF-8 (docs/protocol.md: every str).
    const auto h = msgpack::unpack(out.data(), out.size());
    FUZZ_CHECK(h.get().type == msgpack::type::STR, "an error whose value is not a str");
    FUZZ_CHECK(troupe::protocol::valid_utf8(h.get().as<std::string_view>()),
               "an error message that is not UTF-8: " + hex(out));
    return;
  }
  FUZZ_CHECK(parts.has_value());
  // The call succeeded, so its args were valid msgpack within the limits.
  const auto bound = std::max<std::size_t>(args.size(), 1);
  const auto args_handle = msgpack::unpack(args.data(), args.size(), nullptr, nullptr,
                                           msgpack::unpack_limit(bound, bound, bound, bound, bound, 32));
  const auto result_handle = msgpack::unpack(out.data(), out.size());
  const auto& result = result_handle.get();
  const std::string name(parts->name);

  if (name == "squares" && method == "square") {
    const auto* a = args_of(args_handle, 1);
    FUZZ_CHECK(a && as_int64(a[0]), "square succeeded on arguments that are not one int64");
    const int128 x = *as_int64(a[0]);
    FUZZ_CHECK(fits_int64(x * x),
               "square(" + std::to_string(*as_int64(a[0])) + ") overflowed int64 but succeeded");
    FUZZ_CHECK(as_int64(result) && *as_int64(result) == x * x, "square returned a wrong value");
  } else if (name == "counter" && method == "add") {
    const auto* a = args_of(args_handle, 1);
    FUZZ_CHECK(a && as_int64(a[0]), "add succeeded on arguments that are not one int64");
    auto& total = m.totals[std::string(address)];
    const int128 next = total + *as_int64(a[0]);
    FUZZ_CHECK(fits_int64(next), "counter total overflowed int64 but add succeeded");
    FUZZ_CHECK(as_int64(result) && *as_int64(result) == next, "add returned a wrong total");
    total = next;
  } else if (name == "counter" && method == "get") {
    const auto total = m.totals[std::string(address)];
    FUZZ_CHECK(as_int64(result) && *as_int64(result) == total, "get returned a wrong total");
  } else if (name == "echo" && method == "echo") {
    const auto* a = args_of(args_handle, 1);
    FUZZ_CHECK(a, "echo succeeded on arguments that are not one value");
    FUZZ_CHECK(troupe::fuzz::packed(*a) == out, "echo changed the value: " + hex(out));
  } else if (name == "echo" && method == "fail") {
    FUZZ_CHECK(false, "echo.fail succeeded");
  } else if (name == "vectorize" && method == "apply") {
    const auto* a = args_of(args_handle, 1);
    FUZZ_CHECK(a && a[0].type == msgpack::type::ARRAY && result.type == msgpack::type::ARRAY &&
                   result.via.array.size == a[0].via.array.size,
               "apply returned an array of another length");
    for (std::uint32_t i = 0; i < result.via.array.size; ++i) {
      const double x = a[0].via.array.ptr[i].as<double>();
      const double want = x > 2 ? x + 1 : x - 1;
      const auto& got = result.via.array.ptr[i];
      FUZZ_CHECK(got.type == msgpack::type::FLOAT64, "apply returned a non-float");
      FUZZ_CHECK(std::memcmp(&got.via.f64, &want, sizeof want) == 0, "apply returned a wrong value");
    }
  } else if (name == "probe" && method == "serial") {
    FUZZ_CHECK(result.type == msgpack::type::POSITIVE_INTEGER);
    const auto [it, fresh] = m.serials.emplace(std::string(address), result.via.u64);
    FUZZ_CHECK(fresh || it->second == result.via.u64, "one address answered from two instances");
  } else if (name == "probe" && method == "boom") {
    FUZZ_CHECK(false, "probe.boom succeeded");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  troupe::fuzz::input in(data, size);
  troupe::protocol::limits limits;
  limits.max_message_bytes = 4096;  // small enough that the fuzzer reaches "over the limit"
  model m;
  {
    troupe::dispatcher d(troupe::registry::global(), limits);
    std::size_t instances = 0;
    for (int calls = 0; calls < 64 && !in.empty(); ++calls) {
      const auto op = in.u8();
      if (op == 0xff) {
        d.destroy_all();
        FUZZ_CHECK(d.live_instances() == 0 && live_probes.empty(), "destroy_all left instances alive");
        m = model{};
        instances = 0;
        continue;
      }
      const auto ai = op % (std::size(addresses) + 1);
      const std::string address(ai < std::size(addresses) ? addresses[ai] : in.short_bytes(80));
      const auto mi = in.pick(std::size(methods) + 1);
      const std::string method(mi < std::size(methods) ? methods[mi] : in.short_bytes(40));
      const auto args = make_args(in);
      if (method == "square_slowly") continue;  // it sleeps as long as it is told to

      troupe::value_buffer out;
      const auto st = d.handle(address, method, args.data(), args.size(), out);
      const std::string value(out.data(), out.size());
      FUZZ_CHECK(static_cast<std::size_t>(st) < troupe::protocol::status_count, "a status out of range");
      FUZZ_CHECK(
          troupe::fuzz::one_value(value, limits.max_depth),
          "a reply value that is not one msgpack value within the depth limit: " + troupe::fuzz::hex(value));
      check_result(m, address, method, args, st, value);
      // Instances only come into being, one per address, until destroy_all.
      FUZZ_CHECK(d.live_instances() >= instances && d.live_instances() <= instances + 1);
      instances = d.live_instances();
    }
    d.destroy_all();
    FUZZ_CHECK(d.live_instances() == 0 && live_probes.empty(), "destroy_all left instances alive");
    d.destroy_all();  // a second time finds nothing to destroy (the probe's destructor would say)
  }
  FUZZ_CHECK(live_probes.empty(), "the dispatcher's destructor left probes alive");
  return 0;
}
