#include <iostream>

#include "troupe/client.hpp"

int main() {
  troupe::client c("tcp://127.0.0.1:5555");
  std::cout << c.ask<std::string>("greeter", "greet", "world").get() << "\n";
}
