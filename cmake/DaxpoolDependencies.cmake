# Every dependency of the design card, each with the Debian package that provides it, so a
# missing one stops configuration with a message an operator can act on.
find_package(PkgConfig)
if(NOT PKG_CONFIG_FOUND)
  message(FATAL_ERROR "pkg-config not found: apt-get install pkg-config")
endif()

function(daxpool_require_pkg target module debian_pkg)
  pkg_check_modules(${target} QUIET IMPORTED_TARGET ${module})
  if(NOT ${target}_FOUND)
    message(FATAL_ERROR "daxpool needs ${module} (pkg-config module '${module}' not found): "
                        "apt-get install ${debian_pkg}")
  endif()
  add_library(daxpool::${target} ALIAS PkgConfig::${target})
  message(STATUS "Found ${module} ${${target}_VERSION}")
endfunction()

daxpool_require_pkg(pmem2   libpmem2   libpmem2-dev)
daxpool_require_pkg(ndctl   libndctl   libndctl-dev)
daxpool_require_pkg(daxctl  libdaxctl  libdaxctl-dev)
daxpool_require_pkg(systemd libsystemd libsystemd-dev)
daxpool_require_pkg(jsonc   json-c     libjson-c-dev)
daxpool_require_pkg(uring   liburing   liburing-dev)
daxpool_require_pkg(xxhash  libxxhash  libxxhash-dev)
daxpool_require_pkg(uuid    uuid       uuid-dev)

# libev ships no .pc file in Debian.
find_path(LIBEV_INCLUDE_DIR ev.h)
find_library(LIBEV_LIBRARY NAMES ev)
if(NOT LIBEV_INCLUDE_DIR OR NOT LIBEV_LIBRARY)
  message(FATAL_ERROR "daxpool needs libev (ev.h / libev.so not found): apt-get install libev-dev")
endif()
add_library(daxpool_libev INTERFACE)
target_include_directories(daxpool_libev INTERFACE ${LIBEV_INCLUDE_DIR})
target_link_libraries(daxpool_libev INTERFACE ${LIBEV_LIBRARY})
add_library(daxpool::ev ALIAS daxpool_libev)
message(STATUS "Found libev: ${LIBEV_LIBRARY}")

if(BUILD_TESTING)
  daxpool_require_pkg(cmocka cmocka libcmocka-dev)
endif()
find_package(Threads REQUIRED)
