# gRPC core, linked from its static archives: the target strata_grpc.
#
# Why: Debian's libgrpc.so pulls about 50 shared libraries (abseil alone is 30), and an idle
# agent pays for each: the pages its loader touches, relocations and symbol lookups. Linked
# from the archives, only the objects strata calls come in, packed together, with
# libstdc++ likewise. Measured on the embedded default config: idle RSS 17.4 -> 14.1 MiB
# (bench/run.sh, scenario C). The libraries the agent also uses itself, or that every
# process has (zlib, libc), stay shared, and so does c-ares: the ASan tests suppress its known
# leak (c-ares#439, see docs/design-notes.md) by the name libcares.so. OpenSSL is the target
# strata_openssl, below.
#
# STRATA_STATIC_GRPC=OFF links the shared libraries instead, as pkg-config says.
option(STRATA_STATIC_GRPC "Link gRPC core, abseil, upb and re2 from their static archives" ON)
option(STRATA_STATIC_OPENSSL "With static gRPC, link OpenSSL from its static archives too" ON)

add_library(strata_grpc INTERFACE)
target_include_directories(strata_grpc INTERFACE ${GRPC_INCLUDE_DIRS})
target_compile_options(strata_grpc INTERFACE ${GRPC_CFLAGS_OTHER})

# OpenSSL (gRPC's TLS, SigV4's SHA-256 and HMAC): the target strata_openssl. With static gRPC
# it comes from libssl.a and libcrypto.a (libssl-dev ships them): loading the shared
# libcrypto binds some 3 400 of its own symbols through the dynamic linker at every start,
# TLS used or not, which was 0.6-0.9 MiB of an idle agent's RSS. The cost: an OpenSSL
# security update reaches strata when it is rebuilt, as gRPC's already does. Its symbols are
# kept out of strata's dynamic symbol table (--exclude-libs), so that a libcurl loaded later
# (agent/curl_loader.c), which brings the shared OpenSSL, binds to that one and never to ours.
add_library(strata_openssl INTERFACE)
find_library(STRATA_LIBSSL_A NAMES libssl.a)
find_library(STRATA_LIBCRYPTO_A NAMES libcrypto.a)
if(STRATA_STATIC_GRPC AND STRATA_STATIC_OPENSSL AND STRATA_LIBSSL_A AND STRATA_LIBCRYPTO_A)
  target_include_directories(strata_openssl INTERFACE ${CRYPTO_INCLUDE_DIRS})
  target_link_libraries(strata_openssl INTERFACE ${STRATA_LIBSSL_A} ${STRATA_LIBCRYPTO_A} ${CMAKE_DL_LIBS} Threads::Threads)
  target_link_options(strata_openssl INTERFACE "LINKER:--exclude-libs,libssl.a:libcrypto.a")
  set(_openssl_how "static")
else()
  pkg_check_modules(SSL REQUIRED IMPORTED_TARGET libssl)
  target_link_libraries(strata_openssl INTERFACE PkgConfig::SSL PkgConfig::CRYPTO)
  set(_openssl_how "shared")
endif()

set(_openssl ssl crypto) # from strata_openssl
set(_shared z dl pthread rt m atomic cares) # kept shared (see above)
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
    if(_name IN_LIST _openssl)
      continue()
    endif()
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
  target_link_libraries(strata_grpc INTERFACE PkgConfig::GRPC strata_openssl)
  message(STATUS "gRPC: shared libraries; OpenSSL: ${_openssl_how}")
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
  ${_libstdcxx} strata_openssl -Wl,--push-state,--as-needed ${_shared_flags} -Wl,--pop-state)
list(LENGTH _archives _n)
message(STATUS "gRPC: ${_n} static archives, libstdc++: ${_libstdcxx}; OpenSSL: ${_openssl_how}")
