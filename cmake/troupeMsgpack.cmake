# Defines troupe::msgpack: msgpack-c's C++ headers, used without Boost.
#
# Included by troupe's own build and by the installed troupeConfig.cmake, so
# a consumer finds the headers exactly the way troupe was built with them.
#
# Why not find_package(msgpack-cxx) / find_package(msgpack) (msgpackc-cxx):
# those package configs call find_dependency(Boost) and link Boost::boost
# into every target that uses them (Debian 12's libmsgpack-cxx-dev 4.1.3 and
# upstream's default MSGPACK_USE_BOOST=ON). troupe needs none of Boost's
# adaptors, and it would make Boost a requirement of every project that
# links troupe. msgpack-c's C++ part is header-only and works without Boost
# when MSGPACK_NO_BOOST is defined (msgpack-c >= 4.0), so we look for the
# header ourselves and carry that definition to everything that includes it.
# TROUPE_MSGPACK_INCLUDE_DIR (a cache variable) points at another copy.
if(TARGET troupe::msgpack)
  return()
endif()

find_path(TROUPE_MSGPACK_INCLUDE_DIR msgpack.hpp
  DOC "directory with msgpack-c's C++ header msgpack.hpp (Debian: libmsgpack-cxx-dev)")

set(_troupe_msgpack_version "")
if(TROUPE_MSGPACK_INCLUDE_DIR AND EXISTS "${TROUPE_MSGPACK_INCLUDE_DIR}/msgpack/version_master.hpp")
  file(STRINGS "${TROUPE_MSGPACK_INCLUDE_DIR}/msgpack/version_master.hpp" _troupe_msgpack_lines
       REGEX "^#define MSGPACK_VERSION_(MAJOR|MINOR|REVISION) +[0-9]+")
  foreach(_troupe_part MAJOR MINOR REVISION)
    string(REGEX REPLACE ".*#define MSGPACK_VERSION_${_troupe_part} +([0-9]+).*" "\\1" _troupe_number
           "${_troupe_msgpack_lines}")
    list(APPEND _troupe_msgpack_version "${_troupe_number}")
  endforeach()
  list(JOIN _troupe_msgpack_version "." _troupe_msgpack_version)
endif()

if(NOT TROUPE_MSGPACK_INCLUDE_DIR)
  set(_troupe_msgpack_problem "msgpack.hpp not found")
elseif(_troupe_msgpack_version VERSION_LESS 4.0)
  set(_troupe_msgpack_problem
      "${TROUPE_MSGPACK_INCLUDE_DIR}/msgpack.hpp is msgpack-c '${_troupe_msgpack_version}', 4.0 or newer is needed (MSGPACK_NO_BOOST)")
else()
  set(_troupe_msgpack_problem "")
  add_library(troupe::msgpack INTERFACE IMPORTED)
  set_target_properties(troupe::msgpack PROPERTIES
    INTERFACE_INCLUDE_DIRECTORIES "${TROUPE_MSGPACK_INCLUDE_DIR}"
    INTERFACE_COMPILE_DEFINITIONS MSGPACK_NO_BOOST)
endif()

if(_troupe_msgpack_problem)
  set(_troupe_msgpack_problem
      "troupe: ${_troupe_msgpack_problem}. Install msgpack-c's C++ headers (Debian: apt install libmsgpack-cxx-dev) or set TROUPE_MSGPACK_INCLUDE_DIR.")
  # In a find_package(troupe) this makes the package not found (with the
  # message) instead of stopping the consumer's configure outright.
  if(CMAKE_FIND_PACKAGE_NAME STREQUAL "troupe")
    set(troupe_FOUND FALSE)
    set(troupe_NOT_FOUND_MESSAGE "${_troupe_msgpack_problem}")
  else()
    message(FATAL_ERROR "${_troupe_msgpack_problem}")
  endif()
endif()
unset(_troupe_msgpack_problem)
unset(_troupe_msgpack_version)
unset(_troupe_msgpack_lines)
unset(_troupe_number)
unset(_troupe_part)
