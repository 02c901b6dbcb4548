# Finds the header-only moodycamel ConcurrentQueue installed by Debian's
# libconcurrentqueue-dev (headers under <prefix>/include/concurrentqueue/),
# which ships no CMake package config. Defines ConcurrentQueue::ConcurrentQueue.
find_path(ConcurrentQueue_INCLUDE_DIR
  NAMES concurrentqueue/concurrentqueue.h
  PATHS /usr/include /usr/local/include)
include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(ConcurrentQueue
  REQUIRED_VARS ConcurrentQueue_INCLUDE_DIR)
if(ConcurrentQueue_FOUND AND NOT TARGET ConcurrentQueue::ConcurrentQueue)
  add_library(ConcurrentQueue::ConcurrentQueue INTERFACE IMPORTED)
  set_target_properties(ConcurrentQueue::ConcurrentQueue PROPERTIES
    INTERFACE_INCLUDE_DIRECTORIES "${ConcurrentQueue_INCLUDE_DIR}")
endif()
mark_as_advanced(ConcurrentQueue_INCLUDE_DIR)
