# gRPC core, linked from its static archives: the target strata_grpc.
#
# Why: Debian's libgrpc.so pulls about 50 shared libraries (abseil alone is 30), and an idle
# agent pays for each: the pages its loader touches, relocations and symbol lookups. Linked
# from the archives, only the objects strata calls come in, packed together, with
# libstdc++ likewise. Measured on the embedded default config: idle RSS 17.4 -> 14.1 MiB
# (bench/run.sh, scenario C). The libraries the agent also uses itself, or that every
# process has (OpenSSL, zlib, libc), stay shared, and so does c-ares: the ASan tests suppress
# its known leak (c-ares#439, see docs/design-notes.md) by the name libcares.so.
#
# STRATA_STATIC_GRPC=OFF links the shared libraries instead, as pkg-config says.
option(STRATA_STATIC_GRPC "Link gRPC core, abseil, upb and re2 from their static archives" ON)

add_library(strata_grpc INTERFACE)
target_include_directories(strata_grpc INTERFACE ${GRPC_INCLUDE_DIRS})
target_compile_options(strata_grpc INTERFACE ${GRPC_CFLAGS_OTHER})

set(_shared ssl crypto z dl pthread rt m atomic cares) # kept shared (see above)
set(_archives "")
set(_shared_flags "")
set(_missing "")
if(STRATA_STATIC_GRPC)
  execute_process(COMMAND ${PKG_CONFIG_EXECUTABLE} --static --libs-only-l grpc gpr
    OUTPUT_VARIABLE _grpc_libs OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE _rc)
  if(NOT _rc EQUAL 0)
    message(FATAL_ERROR "pkg-config --static --libs grpc gpr failed")
  endif()
  separate_arguments(_grpc_libs UNIX_COMMAND "${_grpc_libs}")
  foreach(_flag IN LISTS _grpc_libs)
    string(REGEX REPLACE "^-l" "" _name "${_flag}")
    if(_name IN_LIST _shared)
      list(APPEND _shared_flags "-l${_name}")
      continue()
    endif()
    find_library(STRATA_ARCHIVE_${_name} NAMES lib${_name}.a)
    if(STRATA_ARCHIVE_${_name})
      list(APPEND _archives "${STRATA_ARCHIVE_${_name}}")
    else()
      list(APPEND _missing "lib${_name}.a")
    endif()
  endforeach()
  # All or nothing: one shared libgrpc or abseil beside static ones would bring a second copy
  # of their globals into the process.
  if(_missing OR NOT _archives)
    list(REMOVE_DUPLICATES _missing)
    message(WARNING "STRATA_STATIC_GRPC: no ${_missing}: linking gRPC's shared libraries instead")
    set(STRATA_STATIC_GRPC OFF)
  endif()
endif()

if(NOT STRATA_STATIC_GRPC)
  target_link_libraries(strata_grpc INTERFACE PkgConfig::GRPC)
  return()
endif()
list(REMOVE_DUPLICATES _archives) # the group below resolves their order
list(REMOVE_DUPLICATES _shared_flags)

# gRPC is C++: its runtime comes from the archive too where the compiler has one. Not in the
# fuzz build: libFuzzer links the shared libstdc++, and two C++ runtimes must not meet.
set(_libstdcxx stdc++)
if(NOT STRATA_FUZZ)
  execute_process(COMMAND ${CMAKE_C_COMPILER} -print-file-name=libstdc++.a
    OUTPUT_VARIABLE _a OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(IS_ABSOLUTE "${_a}" AND EXISTS "${_a}")
    set(_libstdcxx "${_a}")
  endif()
endif()

# --as-needed: libraries pkg-config lists that nothing ends up calling (libatomic with
# clang, say) do not become run-time dependencies.
target_link_libraries(strata_grpc INTERFACE -Wl,--start-group ${_archives} -Wl,--end-group
  ${_libstdcxx} -Wl,--push-state,--as-needed ${_shared_flags} -Wl,--pop-state)
list(LENGTH _archives _n)
message(STATUS "gRPC: ${_n} static archives, libstdc++: ${_libstdcxx}")
