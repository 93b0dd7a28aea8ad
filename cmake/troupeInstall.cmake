# Install rules, the CMake package, the pkg-config file and the Debian
# package (CPack). Included by the root CMakeLists.txt when TROUPE_INSTALL.
#
# Everything installed is relative to the prefix chosen at install time
# (cmake --install build --prefix P; /usr in the .deb): the config and the
# .pc file find the rest relative to where they are.
include(CMakePackageConfigHelpers)

set(TROUPE_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/troupe)

# The public headers of both layers go to one include/troupe/ directory.
install(DIRECTORY transport/include/ actors/include/
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
        FILES_MATCHING PATTERN "*.hpp")

install(TARGETS troupe_protocol troupe_client troupe_broker troupe_worker troupe troupe_cli
        EXPORT troupeTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(EXPORT troupeTargets NAMESPACE troupe:: DESTINATION ${TROUPE_CMAKE_DIR})

configure_package_config_file(cmake/troupeConfig.cmake.in ${PROJECT_BINARY_DIR}/troupeConfig.cmake
                              INSTALL_DESTINATION ${TROUPE_CMAKE_DIR})
# 0.x: a minor release may change the API, so only the same minor version
# satisfies find_package(troupe 0.1).
write_basic_package_version_file(${PROJECT_BINARY_DIR}/troupeConfigVersion.cmake
                                 COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/troupeConfig.cmake ${PROJECT_BINARY_DIR}/troupeConfigVersion.cmake
              cmake/troupeMsgpack.cmake cmake/troupe_add_worker.cmake
        DESTINATION ${TROUPE_CMAKE_DIR})

# pkg-config: prefix relative to the .pc file, like the CMake config.
file(RELATIVE_PATH TROUPE_PC_PREFIX_FROM_PCDIR /root/${CMAKE_INSTALL_LIBDIR}/pkgconfig /root)
string(REGEX REPLACE "/$" "" TROUPE_PC_PREFIX_FROM_PCDIR "${TROUPE_PC_PREFIX_FROM_PCDIR}")
configure_file(cmake/troupe.pc.in ${PROJECT_BINARY_DIR}/troupe.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/troupe.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

# `make package`: a Debian package of the above, installed under /usr.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME troupe)
set(CPACK_PACKAGE_VENDOR troupe)
set(CPACK_PACKAGE_CONTACT "troupe maintainers <troupe@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "message-queue actor framework for C++ on ZeroMQ and MessagePack")
set(CPACK_PACKAGE_DESCRIPTION
    "Headers, static libraries, CMake package and pkg-config file for building actors, workers and clients with troupe, and the `troupe` command line (broker, call, stats, bench).")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)  # troupe_<version>_<arch>.deb
set(CPACK_DEBIAN_PACKAGE_SECTION libdevel)
# The package ships static libraries and headers, so what a program built
# against it needs at compile and link time is a dependency, not a
# suggestion: libzmq (through cppzmq's config and troupe.pc, found with
# pkg-config), cppzmq's and msgpack-c's headers. dpkg-shlibdeps adds the
# shared libraries the `troupe` executable links (libzmq5, libstdc++6, ...).
set(CPACK_DEBIAN_PACKAGE_DEPENDS "libzmq3-dev, cppzmq-dev, libmsgpack-cxx-dev, libsqlite3-dev, pkg-config")
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "cmake, g++ | c++-compiler")
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
include(CPack)
