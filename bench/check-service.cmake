# Runs `daxpool-bench service --quick` and checks its output: exit 0, one valid JSON object per
# line with the row shape of every suite, and every metric the suite promises. Never checks
# timing values. Usage: cmake -DBENCH=path/to/daxpool-bench -P check-service.cmake
cmake_minimum_required(VERSION 3.25)
if(NOT BENCH)
  message(FATAL_ERROR "pass -DBENCH=path/to/daxpool-bench")
endif()
execute_process(COMMAND ${BENCH} service --quick RESULT_VARIABLE rc OUTPUT_VARIABLE out
                ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "daxpool-bench service --quick exited with ${rc}\nstderr:\n${err}")
endif()
string(STRIP "${out}" out)
string(REPLACE "\n" ";" lines "${out}")
set(seen "")
set(nrows 0)
foreach(line IN LISTS lines)
  foreach(key suite system metric value unit params)
    string(JSON v ERROR_VARIABLE jerr GET "${line}" ${key})
    if(jerr)
      message(FATAL_ERROR "row without \"${key}\" or not JSON (${jerr}):\n${line}")
    endif()
  endforeach()
  string(JSON suite GET "${line}" suite)
  string(JSON system GET "${line}" system)
  string(JSON metric GET "${line}" metric)
  string(JSON vtype TYPE "${line}" value)
  string(JSON ptype TYPE "${line}" params)
  if(NOT suite STREQUAL "service" OR NOT vtype STREQUAL "NUMBER" OR NOT ptype STREQUAL "OBJECT")
    message(FATAL_ERROR "bad row:\n${line}")
  endif()
  list(APPEND seen "${system}/${metric}")
  math(EXPR nrows "${nrows} + 1")
endforeach()
set(expected
  daxpoold/grant_alloc_latency_p50 daxpoold/grant_alloc_latency_p99 daxpoold/grant_alloc_latency_max
  daxpoold/grant_pair_latency_p50 daxpoold/grant_pair_latency_p99 daxpoold/grant_pair_latency_max
  daxpoold/grant_alloc_idle_latency_p50 in-process/grant_alloc_latency_p50 in-process/grant_pair_latency_p50
  daxpoold/ping_throughput daxpoold/ping_latency_p50 daxpoold/ping_latency_p99
  daxpoold/pair_throughput daxpoold/pair_latency_p50 daxpoold/pair_latency_p99
  daxpoold/zeroing_pending_bytes daxpoold/zeroing_drain_time
  in-process/pair_throughput in-process/pair_latency_p50 in-process/pair_latency_p99
  ratio/grant_alloc_latency_p50_ratio ratio/pair_latency_p50_ratio ratio/pair_throughput_ratio
  target/target_grant_latency_p50 target/target_pair_throughput_8_clients
  target/target_pair_latency_p99_8_clients machine/loadavg_1m_start)
foreach(m IN LISTS expected)
  if(NOT m IN_LIST seen)
    message(FATAL_ERROR "metric ${m} missing from the output:\n${out}")
  endif()
endforeach()
# One throughput row per client count (1, 8, 64) with 4 KiB slices, one with 2 MiB.
list(FILTER seen INCLUDE REGEX "^daxpoold/pair_throughput$")
list(LENGTH seen n)
if(NOT n EQUAL 4)
  message(FATAL_ERROR "expected 4 daxpoold pair_throughput rows, got ${n}")
endif()
message(STATUS "daxpool-bench service --quick: ${nrows} valid rows")
