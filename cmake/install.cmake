# Installation and the .deb: the binary, the man page (built from
# docs/alert-exec.1.scd when scdoc is found, gzipped as Debian ships man
# pages), the systemd unit and the docs. Included by the top CMakeLists.txt.
include(GNUInstallDirs)

install(TARGETS alert-exec RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

# The man page. scdoc reads stdin and writes stdout; gzip -9n leaves out the
# name and time, so two builds give the same bytes (CPack does not gzip).
find_program(SCDOC scdoc)
if(SCDOC)
  set(MAN_SRC ${CMAKE_SOURCE_DIR}/docs/alert-exec.1.scd)
  set(MAN_PAGE ${CMAKE_BINARY_DIR}/alert-exec.1)
  add_custom_command(
    OUTPUT ${MAN_PAGE} ${MAN_PAGE}.gz
    COMMAND sh -c "\"$1\" < \"$2\" > \"$3\" && gzip -9n -c \"$3\" > \"$3.gz\""
            sh ${SCDOC} ${MAN_SRC} ${MAN_PAGE}
    DEPENDS ${MAN_SRC}
    COMMENT "Building the man page alert-exec.1"
    VERBATIM)
  add_custom_target(man ALL DEPENDS ${MAN_PAGE} ${MAN_PAGE}.gz)
  install(FILES ${MAN_PAGE}.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
else()
  message(STATUS "scdoc not found: the man page is not built (apt-get install scdoc)")
endif()

# The unit runs the binary where this build installs it.
file(READ ${CMAKE_SOURCE_DIR}/contrib/alert-exec.service UNIT_TEXT)
string(REPLACE "/usr/bin/alert-exec " "${CMAKE_INSTALL_FULL_BINDIR}/alert-exec " UNIT_TEXT
  "${UNIT_TEXT}")
file(WRITE ${CMAKE_BINARY_DIR}/alert-exec.service "${UNIT_TEXT}")
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS
  ${CMAKE_SOURCE_DIR}/contrib/alert-exec.service)
install(FILES ${CMAKE_BINARY_DIR}/alert-exec.service DESTINATION lib/systemd/system)

install(FILES ${CMAKE_SOURCE_DIR}/README.md DESTINATION ${CMAKE_INSTALL_DOCDIR})
foreach(licence LICENSE LICENSE.md COPYING)
  if(EXISTS ${CMAKE_SOURCE_DIR}/${licence})
    install(FILES ${CMAKE_SOURCE_DIR}/${licence} DESTINATION ${CMAKE_INSTALL_DOCDIR})
  endif()
endforeach()

# cpack -G DEB (scripts/package.sh). The dependencies are those of the
# libraries the binary links, found by dpkg-shlibdeps (package dpkg-dev).
set(ALERT_EXEC_MAINTAINER "alert-exec maintainers <maintainers@users.noreply.r-seed-b4e05efd.example>"
  CACHE STRING "Maintainer field of the .deb")
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME alert-exec)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
  "alert execution engine: evaluates an alerts server's alerts, calls notify and resolve")
# CPack writes the summary as the first line, this below it.
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION
  "alert-exec loads alert definitions from an alerts server, evaluates every
 alert on its own interval, moves it between PASS, WARN and CRITICAL, and
 calls the server's notify and resolve endpoints. All state lives in one
 SQLite database, so a restart resumes without notifying twice and a failed
 call is retried until the server takes it. Ships a systemd unit
 (Type=notify, watchdog) and the man page alert-exec(1).")
set(CPACK_PACKAGE_CONTACT "${ALERT_EXEC_MAINTAINER}")
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${ALERT_EXEC_MAINTAINER}")
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
# The prefix the unit was written for (scripts/package.sh configures /usr).
set(CPACK_PACKAGING_INSTALL_PREFIX ${CMAKE_INSTALL_PREFIX})
set(CPACK_STRIP_FILES ON)
include(CPack)
