// Places three orders through `order` actors (shop_actors.cpp), which call
// `inventory` and `ledger` themselves, then prints what is left.
//   example-orders-client [endpoint]
#include <cstdio>
#include <string>

#include "troupe/client.hpp"

int main(int argc, char** argv) {
  troupe::client c(argc > 1 ? argv[1] : troupe::default_broker_endpoint());
  try {
    // 3 lamps for 4500 cents each time; the account holds 10000.
    for (const char* id : {"order/1", "order/2", "order/3"}) {
      const auto outcome =
          c.ask<std::string>(id, "place", std::string("lamp"), 3, std::string("alice"), 4500LL).get();
      std::printf("%s: %s\n", id, outcome.c_str());
    }
    std::printf("lamps in stock: %d, alice's balance: %lld\n", c.ask<int>("inventory/lamp", "stock").get(),
                c.ask<long long>("ledger/alice", "balance").get());
  } catch (const troupe::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
