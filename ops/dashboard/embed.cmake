# The ops dashboard (this folder) embedded into the gateway as byte arrays, so
# that an installed gateway needs neither node_modules nor the network.
#
# Two uses:
#   include()d by ops/CMakeLists.txt (configure time): sb_dashboard_npm_ci()
#     installs uPlot from package-lock.json when node_modules is missing or
#     older than the lock file, and fails the configure clearly without npm.
#   cmake -DSB_DASHBOARD_DIR=<this dir> -DSB_NPM=<npm or empty> -DOUT=<file.cpp>
#     -P embed.cmake (build time, from the custom command): the same check
#     (node_modules may have been removed since), then writes OUT, which
#     defines sb::ops::dashboard_assets() (ops/dashboard.hpp).

# "<url path>|<file under this folder>". The content type follows the
# extension (sb_dashboard_content_type); the test checks them.
set(SB_DASHBOARD_ASSETS
  "/|index.html"
  "/dashboard.js|dashboard.js"
  "/dashboard.css|dashboard.css"
  "/uplot.min.js|node_modules/uplot/dist/uPlot.iife.min.js"
  "/uplot.min.css|node_modules/uplot/dist/uPlot.min.css")

# What `npm ci` must have produced (its own record of the install first).
set(SB_DASHBOARD_NPM_FILES
  node_modules/.package-lock.json
  node_modules/uplot/dist/uPlot.iife.min.js
  node_modules/uplot/dist/uPlot.min.css)

function(sb_dashboard_npm_ready dir out_var)
  set(ready TRUE)
  foreach(f IN LISTS SB_DASHBOARD_NPM_FILES)
    if(NOT EXISTS "${dir}/${f}")
      set(ready FALSE)
    endif()
  endforeach()
  # A newer lock file (a version bump pulled from git) means a new install.
  if(ready AND "${dir}/package-lock.json" IS_NEWER_THAN "${dir}/node_modules/.package-lock.json")
    file(TIMESTAMP "${dir}/package-lock.json" lock_time "%s")
    file(TIMESTAMP "${dir}/node_modules/.package-lock.json" installed_time "%s")
    if(lock_time GREATER installed_time)
      set(ready FALSE)
    endif()
  endif()
  set(${out_var} ${ready} PARENT_SCOPE)
endfunction()

function(sb_dashboard_npm_ci dir npm)
  sb_dashboard_npm_ready("${dir}" ready)
  if(ready)
    return()
  endif()
  if(NOT npm)
    message(FATAL_ERROR
      "ops/dashboard: node_modules is missing (or older than package-lock.json) and npm was not found.\n"
      "The ops dashboard embeds uPlot from npm at build time. Install node and npm (ops/install-deps does), "
      "or run `npm ci` in ${dir}, then configure again.")
  endif()
  # One install at a time across build trees (build/, build-asan/, ...)
  # configuring at once. The lock file lives outside the source tree.
  string(MD5 dir_hash "${dir}")
  set(tmp "$ENV{TMPDIR}")
  if(NOT tmp)
    set(tmp /tmp)
  endif()
  file(LOCK "${tmp}/switchboard-dashboard-npm-${dir_hash}.lock" GUARD FUNCTION TIMEOUT 600 RESULT_VARIABLE lock_rc)
  if(NOT lock_rc STREQUAL "0")
    message(FATAL_ERROR "ops/dashboard: could not take the npm install lock: ${lock_rc}")
  endif()
  sb_dashboard_npm_ready("${dir}" ready)  # another tree may have installed meanwhile
  if(ready)
    return()
  endif()
  message(STATUS "ops/dashboard: npm ci (uPlot for the ops dashboard)")
  execute_process(
    COMMAND "${npm}" ci --no-audit --no-fund --no-update-notifier --loglevel=error
    WORKING_DIRECTORY "${dir}"
    RESULT_VARIABLE rc
    OUTPUT_VARIABLE out
    ERROR_VARIABLE out)
  if(NOT rc STREQUAL "0")
    message(FATAL_ERROR "ops/dashboard: `npm ci` in ${dir} failed (${rc}):\n${out}\n"
      "The ops dashboard needs the npm registry once, to install uPlot from package-lock.json.")
  endif()
  sb_dashboard_npm_ready("${dir}" ready)
  if(NOT ready)
    message(FATAL_ERROR "ops/dashboard: `npm ci` in ${dir} succeeded but did not produce ${SB_DASHBOARD_NPM_FILES}")
  endif()
endfunction()

function(sb_dashboard_content_type file out_var)
  if(file MATCHES "\\.html$")
    set(type "text/html; charset=utf-8")
  elseif(file MATCHES "\\.js$")
    set(type "text/javascript; charset=utf-8")
  elseif(file MATCHES "\\.css$")
    set(type "text/css; charset=utf-8")
  else()
    message(FATAL_ERROR "ops/dashboard: no content type for ${file}")
  endif()
  set(${out_var} "${type}" PARENT_SCOPE)
endfunction()

function(sb_dashboard_generate dir out)
  set(arrays "")
  set(table "")
  set(i 0)
  string(REPEAT "." 64 line_of_hex)  # 32 bytes a line
  foreach(asset IN LISTS SB_DASHBOARD_ASSETS)
    string(REPLACE "|" ";" parts "${asset}")
    list(GET parts 0 url)
    list(GET parts 1 file)
    sb_dashboard_content_type("${file}" type)
    file(READ "${dir}/${file}" hex HEX)
    string(LENGTH "${hex}" hex_len)
    math(EXPR size "${hex_len} / 2")
    if(size EQUAL 0)
      message(FATAL_ERROR "ops/dashboard: ${dir}/${file} is empty")
    endif()
    string(REGEX REPLACE "(${line_of_hex})" "\\1\n" hex "${hex}")
    string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," hex "${hex}")
    string(APPEND arrays "// ${file} (${size} bytes)\nconstexpr unsigned char asset_${i}[] = {\n${hex}\n};\n\n")
    string(APPEND table "      {\"${url}\", \"${type}\", bytes(asset_${i}, sizeof(asset_${i}))},\n")
    math(EXPR i "${i} + 1")
  endforeach()
  file(WRITE "${out}"
    "// Generated by ops/dashboard/embed.cmake from ops/dashboard/: do not edit.\n"
    "#include \"ops/dashboard.hpp\"\n\n"
    "namespace sb::ops {\n"
    "namespace {\n\n"
    "${arrays}"
    "std::string_view bytes(const unsigned char* p, std::size_t n) { return {reinterpret_cast<const char*>(p), n}; }\n\n"
    "}  // namespace\n\n"
    "std::span<const dashboard_asset> dashboard_assets() noexcept {\n"
    "  static const dashboard_asset table[] = {\n"
    "${table}"
    "  };\n"
    "  return table;\n"
    "}\n\n"
    "}  // namespace sb::ops\n")
endfunction()

if(CMAKE_SCRIPT_MODE_FILE)
  if(NOT SB_DASHBOARD_DIR OR NOT OUT)
    message(FATAL_ERROR "usage: cmake -DSB_DASHBOARD_DIR=<dir> -DSB_NPM=<npm> -DOUT=<file.cpp> -P embed.cmake")
  endif()
  sb_dashboard_npm_ci("${SB_DASHBOARD_DIR}" "${SB_NPM}")
  sb_dashboard_generate("${SB_DASHBOARD_DIR}" "${OUT}")
endif()
