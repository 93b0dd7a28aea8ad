# troupe_add_worker(NAME SOURCES...)
#
# Adds a worker executable NAME whose actor sources are compiled straight
# into it, linked with troupe::worker. Each troupe::actor registers itself
# from a namespace-scope object; an object file inside a plain static
# library that nothing references is dropped by the linker, and its actors
# silently never register. So actor sources must not go through a plain
# static library (an OBJECT library, or $<LINK_LIBRARY:WHOLE_ARCHIVE,lib>,
# is fine). See docs/concepts.md, "Registration and the linker".
#
# One definition for troupe's own tree and for projects that use troupe: the
# root CMakeLists.txt includes this file, and the installed
# troupeConfig.cmake includes its installed copy.
function(troupe_add_worker name)
  if(NOT ARGN)
    message(FATAL_ERROR "troupe_add_worker(${name}): give the worker's source files")
  endif()
  add_executable(${name} ${ARGN})
  # Actors that call other actors need troupe::client too; link it yourself.
  target_link_libraries(${name} PRIVATE troupe::worker)
endfunction()
