# The install layout. Everything lands under the prefix given at install time
# (`cmake --install BUILD --prefix DIR`), not only the one given at configure time:
#  - paths are relative to the prefix (GNUInstallDirs' CMAKE_INSTALL_<dir>), the config included:
#    PREFIX/etc/daxpool; with prefix /usr GNUInstallDirs keeps it in /etc, and an absolute
#    CMAKE_INSTALL_SYSCONFDIR (as Debian's build passes) is used as it is;
#  - daxpool.pc finds its prefix from its own place (${pcfiledir}), unless the prefix is /usr;
#  - the systemd units are written at install time, with the install-time prefix (systemd/);
#  - programs that link libdaxpool carry an $ORIGIN-relative RUNPATH to the installed library,
#    unless DAXPOOL_INSTALL_RPATH is OFF (the default for prefix /usr, where the library is on
#    the system path, and for the Debian packages).
# docs/INSTALL.md describes the result.

if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  set(daxpool_rpath_default OFF)
else()
  set(daxpool_rpath_default ON)
endif()
option(DAXPOOL_INSTALL_RPATH "Installed programs find libdaxpool through an \$ORIGIN-relative RUNPATH"
       ${daxpool_rpath_default})

# Path of a GNUInstallDirs directory relative to the prefix, or absolute when it was given so.
function(daxpool_install_dir out dir)
  if(IS_ABSOLUTE "${dir}")
    set(${out} "${dir}" PARENT_SCOPE)
  else()
    set(${out} "\${CMAKE_INSTALL_PREFIX}/${dir}" PARENT_SCOPE)
  endif()
endfunction()

# daxpool.pc: prefix=${pcfiledir}/.. as many levels as the pkgconfig directory is deep.
if(CMAKE_INSTALL_PREFIX STREQUAL "/usr" OR IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}"
   OR IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
  set(DAXPOOL_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
  set(DAXPOOL_PC_LIBDIR "${CMAKE_INSTALL_FULL_LIBDIR}")
  set(DAXPOOL_PC_INCLUDEDIR "${CMAKE_INSTALL_FULL_INCLUDEDIR}")
else()
  set(daxpool_pc_up "\${pcfiledir}/../..") # out of pkgconfig/ and the first part of LIBDIR
  string(REGEX MATCHALL "/" daxpool_slashes "${CMAKE_INSTALL_LIBDIR}")
  foreach(slash ${daxpool_slashes})
    string(APPEND daxpool_pc_up "/..")
  endforeach()
  set(DAXPOOL_PC_PREFIX "${daxpool_pc_up}")
  set(DAXPOOL_PC_LIBDIR "\${prefix}/${CMAKE_INSTALL_LIBDIR}")
  set(DAXPOOL_PC_INCLUDEDIR "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
endif()

# Files whose text names installed paths: configured at install time, so that --prefix counts.
# SRC is configured @ONLY with these variables set to the install-time paths:
#   @DAXPOOL_SBINDIR@ @DAXPOOL_BINDIR@ @DAXPOOL_SYSCONFDIR@ @DAXPOOL_DATADIR@ @DAXPOOL_LOCALSTATEDIR@
function(daxpool_install_configured src destination)
  cmake_parse_arguments(arg "" "RENAME" "" ${ARGN})
  get_filename_component(name "${src}" NAME)
  string(REGEX REPLACE "\\.in$" "" name "${name}")
  if(arg_RENAME)
    set(name "${arg_RENAME}")
  endif()
  set(out "${CMAKE_CURRENT_BINARY_DIR}/install-time/${name}")
  daxpool_install_dir(sbindir "${CMAKE_INSTALL_SBINDIR}")
  daxpool_install_dir(bindir "${CMAKE_INSTALL_BINDIR}")
  daxpool_install_dir(sysconfdir "${CMAKE_INSTALL_SYSCONFDIR}")
  daxpool_install_dir(datadir "${CMAKE_INSTALL_DATADIR}")
  daxpool_install_dir(localstatedir "${CMAKE_INSTALL_LOCALSTATEDIR}")
  # With prefix /usr GNUInstallDirs puts etc and var at the root, unless given as absolute paths.
  if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
    set(sysconfdir "${CMAKE_INSTALL_FULL_SYSCONFDIR}")
    set(localstatedir "${CMAKE_INSTALL_FULL_LOCALSTATEDIR}")
  endif()
  install(CODE "
    set(DAXPOOL_SBINDIR \"${sbindir}\")
    set(DAXPOOL_BINDIR \"${bindir}\")
    set(DAXPOOL_SYSCONFDIR \"${sysconfdir}\")
    set(DAXPOOL_DATADIR \"${datadir}\")
    set(DAXPOOL_LOCALSTATEDIR \"${localstatedir}\")
    configure_file(\"${src}\" \"${out}\" @ONLY)
  ")
  install(FILES "${out}" DESTINATION "${destination}")
endfunction()

# Where the config lives, relative to the prefix unless absolute (install DESTINATION form).
if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  set(DAXPOOL_INSTALL_CONFDIR "${CMAKE_INSTALL_FULL_SYSCONFDIR}/daxpool")
else()
  set(DAXPOOL_INSTALL_CONFDIR "${CMAKE_INSTALL_SYSCONFDIR}/daxpool")
endif()

function(daxpool_install_rpath target dir)
  if(NOT TARGET ${target} OR NOT DAXPOOL_INSTALL_RPATH)
    return()
  endif()
  if(IS_ABSOLUTE "${dir}" OR IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}")
    set(rpath "${CMAKE_INSTALL_FULL_LIBDIR}")
  else()
    file(RELATIVE_PATH rel "/prefix/${dir}" "/prefix/${CMAKE_INSTALL_LIBDIR}")
    set(rpath "\$ORIGIN/${rel}")
  endif()
  # RUNPATH, not RPATH: LD_LIBRARY_PATH still wins, as a user expects.
  set_target_properties(${target} PROPERTIES INSTALL_RPATH "${rpath}")
  target_link_options(${target} PRIVATE -Wl,--enable-new-dtags)
endfunction()
