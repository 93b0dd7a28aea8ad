// shop-client: fills two carts and asks for a quote.
#include <cstdint>
#include <cstdio>
#include <exception>

#include "shop.hpp"
#include "troupe/client.hpp"

int main(int argc, char** argv) {
  troupe::client c(argc > 1 ? argv[1] : troupe::default_broker_endpoint());
  try {
    c.tell("cart/alice", "add", "apples", 3);  // one-way; alice's messages stay in order
    const auto apples = c.ask<std::int64_t>("cart/alice", "add", "apples", 4).get();
    const auto bobs_apples = c.ask<std::int64_t>("cart/bob", "count", "apples").get();
    std::printf("cart/alice apples = %lld, cart/bob apples = %lld\n", static_cast<long long>(apples),
                static_cast<long long>(bobs_apples));

    const auto bill = c.ask<shop::invoice>("pricing", "quote", shop::order{"pears", 12, 50}).get();
    std::printf("%s: %lld cents%s\n", bill.item.c_str(), static_cast<long long>(bill.total_cents),
                bill.discounted ? " (discounted)" : "");
  } catch (const std::exception& e) {  // troupe::error: an error reply; or no broker in time
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
