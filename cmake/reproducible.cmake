# SPDX-License-Identifier: Apache-2.0
# Reproducible builds (docs/reproducible-builds.md). Two builds of the same commit with the same
# toolchain give byte-identical runtime binaries, whatever the checkout path, file order, umask,
# mtimes or time of day. The flags here are global and harmless for every target; the runtime's
# executables additionally go through enclavia_runtime_binary().

# No absolute path in any output: __FILE__ (ENCLAVIA_CHECK), std::source_location and debug info
# see "./src/..." and "build/...". GCC tries the last matching map first, so the build directory
# (often inside the source tree) wins over the source directory.
add_compile_options(
  "-ffile-prefix-map=${CMAKE_SOURCE_DIR}=."
  "-ffile-prefix-map=${CMAKE_BINARY_DIR}=build"
  -Werror=date-time)  # No __DATE__, __TIME__ or __TIMESTAMP__.

# Deterministic static archives: zero timestamps, uids, gids and modes (D).
foreach(lang C CXX)
  set(CMAKE_${lang}_ARCHIVE_CREATE "<CMAKE_AR> qcD <TARGET> <LINK_FLAGS> <OBJECTS>")
  set(CMAKE_${lang}_ARCHIVE_APPEND "<CMAKE_AR> qD <TARGET> <LINK_FLAGS> <OBJECTS>")
  set(CMAKE_${lang}_ARCHIVE_FINISH "<CMAKE_RANLIB> -D <TARGET>")
endforeach()

# ENCLAVIA_RUNTIME_DIR holds ramdisk 1: the runtime binaries and runtime.toml.
set(ENCLAVIA_RUNTIME_DIR "${CMAKE_BINARY_DIR}/libexec/enclavia")
set(ENCLAVIA_RUNTIME_MANIFEST "${ENCLAVIA_RUNTIME_DIR}/runtime.toml")

# enclavia-runtime builds every runtime binary (and nothing else): `ninja enclavia-runtime`.
add_custom_target(enclavia-runtime)

# Static, stripped executables with a content-derived build id. Sanitizer builds cannot link
# statically (libasan is dynamic only); they keep dynamic executables for testing, the manifest's
# flags say so, and ENCLAVIA_STATIC_RUNTIME is OFF.
if(ENCLAVIA_SANITIZE OR ENCLAVIA_BUILD_FUZZ)
  set(ENCLAVIA_STATIC_RUNTIME OFF)
  set(ENCLAVIA_STATIC_LINK_OPTIONS -Wl,--build-id=sha1)
else()
  set(ENCLAVIA_STATIC_RUNTIME ON)
  set(ENCLAVIA_STATIC_LINK_OPTIONS
      -static -static-libstdc++ -static-libgcc -Wl,--build-id=sha1 -s)
endif()

# Static executables need the static archives of the system libraries (Debian ships both forms;
# the imported targets name the shared ones). Libraries pick them with ENCLAVIA_SYSTEM_LIB(), below.
find_library(ENCLAVIA_LIBCRYPTO_A NAMES libcrypto.a)
find_library(ENCLAVIA_LIBSSL_A NAMES libssl.a)
find_library(ENCLAVIA_LIBSODIUM_A NAMES libsodium.a)

# enclavia_system_lib_(<out> <imported target> <static archive>) sets <out> to a link item that is
# the static archive when the executable being linked is static (ENCLAVIA_STATIC_LINK, set by
# enclavia_static_binary; TARGET_PROPERTY in a link interface reads the consuming executable)
# and the imported target otherwise.
function(enclavia_system_lib out imported archive)
  set(${out} "$<IF:$<BOOL:$<TARGET_PROPERTY:ENCLAVIA_STATIC_LINK>>,${archive},${imported}>"
      PARENT_SCOPE)
endfunction()

# enclavia_static_binary(<target>) links executable <target> the way the runtime is linked:
# static, stripped, build id = SHA-1 of the contents. For enclave-side programs that are not part
# of the runtime (examples/hello); runtime programs use enclavia_runtime_binary().
function(enclavia_static_binary target)
  target_link_options(${target} PRIVATE ${ENCLAVIA_STATIC_LINK_OPTIONS})
  if(ENCLAVIA_STATIC_RUNTIME)
    set_target_properties(${target} PROPERTIES ENCLAVIA_STATIC_LINK ON)
  endif()
endfunction()

# enclavia_runtime_binary(<target> NAME <path>) makes executable <target> a runtime binary: linked
# by enclavia_static_binary(), written to ${ENCLAVIA_RUNTIME_DIR}, built by `enclavia-runtime`,
# and listed in runtime.toml as <path> inside ramdisk 1 (relative, normalized: "init",
# "usr/bin/enclavia-ingress").
function(enclavia_runtime_binary target)
  cmake_parse_arguments(ARG "" "NAME" "" ${ARGN})
  if(ARG_UNPARSED_ARGUMENTS OR NOT ARG_NAME)
    message(FATAL_ERROR "enclavia_runtime_binary(${target} NAME <path in ramdisk 1>)")
  endif()
  if(ARG_NAME MATCHES "^/|/$|//|(^|/)\\.\\.?(/|$)|[\" \t\\\\]")
    message(FATAL_ERROR "enclavia_runtime_binary(${target}): NAME \"${ARG_NAME}\" must be a "
                        "normalized relative path (no leading /, no . or .., no quotes or spaces)")
  endif()
  get_property(names GLOBAL PROPERTY ENCLAVIA_RUNTIME_NAMES)
  if(ARG_NAME IN_LIST names)
    message(FATAL_ERROR "enclavia_runtime_binary(${target}): NAME ${ARG_NAME} is already used")
  endif()
  enclavia_static_binary(${target})
  set_target_properties(${target} PROPERTIES RUNTIME_OUTPUT_DIRECTORY "${ENCLAVIA_RUNTIME_DIR}")
  add_dependencies(enclavia-runtime ${target})
  set_property(GLOBAL APPEND PROPERTY ENCLAVIA_RUNTIME_NAMES "${ARG_NAME}")
  set_property(GLOBAL PROPERTY ENCLAVIA_RUNTIME_TARGET_${ARG_NAME} ${target})
endfunction()

# The toolchain that builds the runtime, recorded in the manifest (a different toolchain gives
# different bytes). Read once per configure.
function(enclavia_detect_runtime_toolchain_)
  execute_process(COMMAND getconf GNU_LIBC_VERSION OUTPUT_VARIABLE libc
                  OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0 OR libc STREQUAL "")
    set(libc "unknown")
  endif()
  # The linker the compiler driver runs (CMAKE_LINKER can name another one, e.g. ld.lld found
  # next to clang while clang still runs GNU ld).
  execute_process(COMMAND ${CMAKE_CXX_COMPILER} -print-prog-name=ld OUTPUT_VARIABLE linker
                  OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0 OR linker STREQUAL "")
    set(linker ${CMAKE_LINKER})
  endif()
  execute_process(COMMAND ${linker} --version OUTPUT_VARIABLE ld_version
                  ERROR_QUIET RESULT_VARIABLE rc)
  string(REGEX MATCH "^[^\n]*" ld_version "${ld_version}")
  if(NOT rc EQUAL 0 OR ld_version STREQUAL "")
    set(ld_version "unknown")
  endif()
  set(ENCLAVIA_RUNTIME_LIBC "${libc}" PARENT_SCOPE)
  set(ENCLAVIA_RUNTIME_BINUTILS "${ld_version}" PARENT_SCOPE)
endfunction()
enclavia_detect_runtime_toolchain_()

# enclavia_toml_string_(<out> <value>) renders <value> as a TOML basic string.
function(enclavia_toml_string_ out value)
  string(REPLACE "\\" "\\\\" value "${value}")
  string(REPLACE "\"" "\\\"" value "${value}")
  set(${out} "\"${value}\"" PARENT_SCOPE)
endfunction()

# The flags that shape runtime binaries, in the order the compiler and linker see them, with the
# two checkout-specific paths replaced by placeholders. Warning flags (-W…, not -Wl,) do not
# change the output and are left out.
function(enclavia_runtime_flags_ out)
  string(TOUPPER "${CMAKE_BUILD_TYPE}" config)
  separate_arguments(flags UNIX_COMMAND
                     "${CMAKE_CXX_FLAGS} ${CMAKE_CXX_FLAGS_${config}} ${CMAKE_CXX${CMAKE_CXX_STANDARD}_STANDARD_COMPILE_OPTION}")
  if(CMAKE_POSITION_INDEPENDENT_CODE)
    list(APPEND flags ${CMAKE_CXX_COMPILE_OPTIONS_PIE})
  endif()
  get_property(dir_options DIRECTORY "${CMAKE_SOURCE_DIR}" PROPERTY COMPILE_OPTIONS)
  get_target_property(warn_options enclavia_warnings INTERFACE_COMPILE_OPTIONS)
  get_target_property(warn_link enclavia_warnings INTERFACE_LINK_OPTIONS)
  separate_arguments(exe_link UNIX_COMMAND
                     "${CMAKE_EXE_LINKER_FLAGS} ${CMAKE_EXE_LINKER_FLAGS_${config}}")
  list(APPEND flags ${dir_options} ${warn_options} ${exe_link} ${warn_link}
       ${ENCLAVIA_STATIC_LINK_OPTIONS})
  set(rendered "")
  foreach(flag IN LISTS flags)
    if(flag MATCHES "^-W" AND NOT flag MATCHES "^-Wl,")
      continue()
    endif()
    string(REPLACE "${CMAKE_BINARY_DIR}" "<build>" flag "${flag}")
    string(REPLACE "${CMAKE_SOURCE_DIR}" "<source>" flag "${flag}")
    list(APPEND rendered "${flag}")
  endforeach()
  list(JOIN rendered " " rendered)
  set(${out} "${rendered}" PARENT_SCOPE)
endfunction()

# Writes runtime.toml once every directory has registered its binaries (deferred to the end of
# the top-level CMakeLists.txt). Generated at generate time: the file names come from the targets.
function(enclavia_write_runtime_manifest_)
  enclavia_runtime_flags_(flags)
  enclavia_toml_string_(compiler "${CMAKE_CXX_COMPILER_ID} ${CMAKE_CXX_COMPILER_VERSION}")
  enclavia_toml_string_(libc "${ENCLAVIA_RUNTIME_LIBC}")
  enclavia_toml_string_(binutils "${ENCLAVIA_RUNTIME_BINUTILS}")
  enclavia_toml_string_(cmake "${CMAKE_VERSION}")
  enclavia_toml_string_(build_type "${CMAKE_BUILD_TYPE}")
  enclavia_toml_string_(flags "${flags}")
  set(text "# Enclavia runtime manifest: the files of ramdisk 1 and the toolchain that built them.\n")
  string(APPEND text "[toolchain]\n")
  string(APPEND text "compiler = ${compiler}\n")
  string(APPEND text "libc = ${libc}\n")
  string(APPEND text "binutils = ${binutils}\n")
  string(APPEND text "cmake = ${cmake}\n")
  string(APPEND text "build_type = ${build_type}\n")
  string(APPEND text "flags = ${flags}\n")
  get_property(names GLOBAL PROPERTY ENCLAVIA_RUNTIME_NAMES)
  list(SORT names)  # Registration order depends on add_subdirectory order; the manifest doesn't.
  foreach(name IN LISTS names)
    get_property(target GLOBAL PROPERTY ENCLAVIA_RUNTIME_TARGET_${name})
    string(APPEND text "\n[[file]]\n")
    string(APPEND text "path = \"${name}\"\n")
    string(APPEND text "source = \"$<TARGET_FILE_NAME:${target}>\"\n")
    string(APPEND text "mode = 0o755\n")
  endforeach()
  file(GENERATE OUTPUT "${ENCLAVIA_RUNTIME_MANIFEST}" CONTENT "${text}")
endfunction()
cmake_language(DEFER DIRECTORY "${CMAKE_SOURCE_DIR}" CALL enclavia_write_runtime_manifest_)
