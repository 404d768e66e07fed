# floodgate_npm_ci(DIR <dir> WHAT <text> FILES <file>...)
#
# Makes sure <dir>/node_modules matches <dir>/package-lock.json: when any of
# FILES (or npm's own record, node_modules/.package-lock.json) is missing, or
# the lock file is newer than that record, runs `npm ci --no-audit --no-fund`
# in <dir> at configure time, and stops with a message saying what to do when
# that fails. The build itself never calls npm. A change of the lock file
# re-runs the configure step.
function(floodgate_npm_ci)
  cmake_parse_arguments(arg "" "DIR;WHAT" "FILES" ${ARGN})
  set(lock ${arg_DIR}/package-lock.json)
  set(stamp ${arg_DIR}/node_modules/.package-lock.json)
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${lock})
  set(needed FALSE)
  foreach(f ${arg_FILES} ${stamp})
    if(NOT EXISTS ${f})
      set(needed TRUE)
    endif()
  endforeach()
  if(NOT needed AND ${lock} IS_NEWER_THAN ${stamp})
    set(needed TRUE)
  endif()
  if(NOT needed)
    return()
  endif()
  find_program(NPM_PROGRAM npm)
  if(NOT NPM_PROGRAM)
    message(FATAL_ERROR
      "${arg_DIR}/node_modules is missing or older than package-lock.json, and npm was not "
      "found; ${arg_WHAT} needs it. Run deploy/install-deps.sh (it installs Node.js and npm and "
      "runs npm ci), or install npm and run `npm ci` in ${arg_DIR}.")
  endif()
  # Several build directories may configure at once from one source tree.
  file(LOCK ${arg_DIR}/.npm-ci.lock GUARD FUNCTION TIMEOUT 600)
  message(STATUS "npm ci in ${arg_DIR}")
  execute_process(
    COMMAND ${NPM_PROGRAM} ci --no-audit --no-fund
    WORKING_DIRECTORY ${arg_DIR}
    RESULT_VARIABLE result
    OUTPUT_VARIABLE output
    ERROR_VARIABLE output)
  if(NOT result EQUAL 0)
    message(FATAL_ERROR
      "`npm ci --no-audit --no-fund` failed in ${arg_DIR} (exit ${result}); ${arg_WHAT} needs "
      "it. Check that the npm registry is reachable, then configure again.\n${output}")
  endif()
  foreach(f ${arg_FILES})
    if(NOT EXISTS ${f})
      message(FATAL_ERROR "npm ci in ${arg_DIR} succeeded but ${f} is missing; check package.json.")
    endif()
  endforeach()
endfunction()
