// troupe-examples-client: asks ADDRESS METHOD with string arguments through
// the C++ client and prints the string result; any actor in any language
// that takes and returns strings can be called this way.
#include <cstdio>
#include <string>
#include <vector>

#include "troupe/client.hpp"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  std::string endpoint = troupe::default_broker_endpoint();
  if (args.size() >= 2 && args[0] == "--broker") {
    endpoint = args[1];
    args.erase(args.begin(), args.begin() + 2);
  }
  if (args.size() < 2 || args.size() > 4) {
    std::fprintf(stderr,
                 "usage: troupe-examples-client [--broker ENDPOINT] ADDRESS METHOD [STRING [STRING]]\n");
    return 2;
  }
  troupe::client c(endpoint);
  try {
    std::string result;
    if (args.size() == 2) result = c.ask<std::string>(args[0], args[1]).get();
    if (args.size() == 3) result = c.ask<std::string>(args[0], args[1], args[2]).get();
    if (args.size() == 4) result = c.ask<std::string>(args[0], args[1], args[2], args[3]).get();
    std::printf("%s\n", result.c_str());
  } catch (const troupe::error& e) {
    std::fprintf(stderr, "error: %s: %s\n", std::string(e.code_name()).c_str(), e.message().c_str());
    return 1;
  }
  return 0;
}
