# libmicrohttpd (OTLP/HTTP receiver, /metrics, /healthz) as the target strata_mhd: the static
# build without HTTPS that scripts/build-mhd.sh makes (install-deps.sh runs it) when it is
# there, else the system's shared library. Same source and version either way; the system's
# links GnuTLS, which strata never uses and which costs an idle agent ~2.5 MiB of RSS.
set(STRATA_MHD_DIR "${CMAKE_SOURCE_DIR}/.deps/libmicrohttpd" CACHE PATH
    "prefix of a static libmicrohttpd (scripts/build-mhd.sh); the system's is used when it has none")
add_library(strata_mhd INTERFACE)
# A copy built for another version of the package than the one installed now (upgraded since,
# and install-deps.sh not run again) is not used: it would miss the new version's fixes.
set(mhd_stale FALSE)
find_program(DPKG_QUERY dpkg-query)
if(DPKG_QUERY AND EXISTS "${STRATA_MHD_DIR}/debian-version")
  execute_process(COMMAND ${DPKG_QUERY} -W "-f=\${source:Version}" libmicrohttpd-dev
                  OUTPUT_VARIABLE mhd_installed RESULT_VARIABLE mhd_rc ERROR_QUIET)
  file(READ "${STRATA_MHD_DIR}/debian-version" mhd_built)
  string(STRIP "${mhd_built}" mhd_built)
  if(mhd_rc EQUAL 0 AND NOT mhd_installed STREQUAL mhd_built)
    message(WARNING "${STRATA_MHD_DIR} was built from libmicrohttpd ${mhd_built}, the system has ${mhd_installed}: "
                    "using the system's; scripts/build-mhd.sh rebuilds it")
    set(mhd_stale TRUE)
  endif()
endif()
if(NOT mhd_stale AND EXISTS "${STRATA_MHD_DIR}/lib/libmicrohttpd.a" AND EXISTS "${STRATA_MHD_DIR}/include/microhttpd.h")
  target_include_directories(strata_mhd SYSTEM BEFORE INTERFACE ${STRATA_MHD_DIR}/include)
  target_link_libraries(strata_mhd INTERFACE ${STRATA_MHD_DIR}/lib/libmicrohttpd.a Threads::Threads)
  message(STATUS "libmicrohttpd: ${STRATA_MHD_DIR} (static, without HTTPS)")
else()
  pkg_check_modules(MHD REQUIRED IMPORTED_TARGET libmicrohttpd)
  target_link_libraries(strata_mhd INTERFACE PkgConfig::MHD)
  message(STATUS "libmicrohttpd: the system's, with GnuTLS (scripts/build-mhd.sh builds one without: ~2.5 MiB less RSS)")
endif()
