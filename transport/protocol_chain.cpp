// The call chain of a request made from inside a method (docs/protocol.md,
// "Call chains"): REQUEST meta's 7th element. The broker reads it to refuse
// a request that would wait on an instance already waiting up its own chain,
// and forwards it to the worker, which extends it for the calls it makes.
#include <msgpack.hpp>

#include "protocol_durable.hpp"
#include "troupe/protocol.hpp"
#include "wire_reader.hpp"

namespace troupe::protocol {
namespace {

struct append_sink {
  std::string& out;
  void write(const char* data, std::size_t size) { out.append(data, size); }
};

// One link; its address view points into the reader's buffer.
bool read_link(wire_reader& r, chain_link& link) {
  auto n = r.array_header();
  if (!n || *n != 2) return false;
  auto address = r.str();
  auto id = r.uint();
  if (!address || !id) return false;
  const auto parts = split_address(*address);
  if (!parts || parts->name == management_actor) return false;
  link = {*address, *id};
  return true;
}

}  // namespace

bool check_chain(wire_reader& r) {
  auto n = r.array_header();
  if (!n || *n < 1 || *n > max_chain_length) return false;
  chain_link link;
  for (std::uint32_t i = 0; i < *n; ++i)
    if (!read_link(r, link)) return false;
  return true;
}

std::vector<chain_link> decode_chain(std::string_view chain) {
  std::vector<chain_link> links;
  if (chain.empty()) return links;
  wire_reader r(chain.data(), chain.size());
  auto n = r.array_header();
  if (!n || *n > max_chain_length) return links;
  links.resize(*n);
  for (auto& link : links)
    if (!read_link(r, link)) return {};
  return links;
}

void encode_chain(std::string& out, const std::vector<chain_link>& links) {
  out.clear();
  append_sink sink{out};
  msgpack::packer<append_sink> pk(sink);
  pk.pack_array(static_cast<std::uint32_t>(links.size()));
  for (const auto& link : links) {
    pk.pack_array(2);
    pk.pack(link.address);
    pk.pack_uint64(link.id);
  }
}

std::string describe_chain(const std::vector<chain_link>& links, std::string_view target) {
  std::string text;
  for (const auto& link : links) {
    text += to_valid_utf8(link.address);
    text += " -> ";
  }
  text += to_valid_utf8(target);
  return text;
}

}  // namespace troupe::protocol
