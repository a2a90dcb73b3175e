# Helpers every src/ folder uses, so that warnings, sanitizers and test registration are set in one place.

set(RADIXLM_WARNINGS -Wall -Wextra -Wpedantic -Werror -Wno-missing-field-initializers)
# Sanitizer and fuzzer flags apply to host C++ only: nvcc neither needs nor accepts them.
if(RADIXLM_SANITIZE)
  add_compile_options($<$<COMPILE_LANGUAGE:CXX>:-fsanitize=address,undefined>
                      $<$<COMPILE_LANGUAGE:CXX>:-fno-omit-frame-pointer>
                      $<$<COMPILE_LANGUAGE:CXX>:-fno-sanitize-recover=undefined>)
  add_link_options(-fsanitize=address,undefined)
endif()
if(RADIXLM_FUZZ)
  # Coverage instrumentation for the libraries the fuzzers link; the fuzzer main comes from -fsanitize=fuzzer.
  add_compile_options($<$<COMPILE_LANGUAGE:CXX>:-fsanitize=fuzzer-no-link>)
endif()

# radixlm_library(NAME SOURCES a.cpp ... DEPS other_targets ...)
# Defines the static library radixlm_NAME with src/ on its include path.
function(radixlm_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_library(radixlm_${name} STATIC ${ARG_SOURCES})
  target_include_directories(radixlm_${name} PUBLIC ${PROJECT_SOURCE_DIR}/src)
  target_compile_options(radixlm_${name} PRIVATE $<$<COMPILE_LANGUAGE:CXX>:${RADIXLM_WARNINGS}>)
  target_link_libraries(radixlm_${name} PUBLIC ${ARG_DEPS})
endfunction()

# radixlm_test(NAME SOURCES a_test.cpp ... DEPS ...)
# A GoogleTest binary registered with ctest. Tests that take more than a few seconds get LABELS slow.
function(radixlm_test name)
  if(NOT RADIXLM_BUILD_TESTS)
    return()
  endif()
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS;LABELS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_compile_options(${name} PRIVATE ${RADIXLM_WARNINGS})
  target_compile_definitions(${name} PRIVATE
    RADIXLM_SOURCE_DIR="${PROJECT_SOURCE_DIR}"
    RADIXLM_FIXTURES_DIR="${PROJECT_SOURCE_DIR}/../shared/fixtures")
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} GTest::gtest GTest::gtest_main)
  # A generous discovery timeout: the first run on a cold disk loads large shared libraries (cuBLASLt is
  # hundreds of MB), which took over the default 5 s on CI.
  gtest_discover_tests(${name} DISCOVERY_MODE PRE_TEST DISCOVERY_TIMEOUT 120
                       PROPERTIES LABELS "unit;${ARG_LABELS}")
endfunction()

# radixlm_fuzzer(NAME SOURCES fuzz.cpp DEPS ...): a libFuzzer binary, built only with RADIXLM_FUZZ=ON.
function(radixlm_fuzzer name)
  if(NOT RADIXLM_FUZZ)
    return()
  endif()
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_compile_options(${name} PRIVATE -fsanitize=fuzzer)
  target_link_options(${name} PRIVATE -fsanitize=fuzzer)
  target_link_libraries(${name} PRIVATE ${ARG_DEPS})
endfunction()
