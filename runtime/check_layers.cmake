# check_layers.cmake - fails when a file of the runtime's process core
# (FILES, in DIR) includes a header of the network layer or calls one of
# its functions by name: the core reaches other nodes only through the
# node's net ops (node.h). Run by ctest: cmake -DDIR=... -DFILES=a.c,b.h -P.
string(REPLACE "," ";" files "${FILES}")
set(net_headers remote remote_int cluster channel membership membership_int transport
    fdguard connguard frame replay wire svclist)
list(JOIN net_headers "|" heads)
set(include_re "#[ \t]*include[ \t]*[\"<](${heads})\\.h[\">]")
# A call (or the address) of a network module's function: its prefix at
# the start of an identifier, then a name and "(" or a table entry.
set(call_re "(^|[^A-Za-z0-9_])(remote|cluster|mship|channel|transport_nn|fdguard|connguard|frame|replay|svclist)_[a-z0-9_]+[ \t]*[(,;]")
set(bad 0)
foreach(f IN LISTS files)
  if(NOT EXISTS "${DIR}/${f}")
    message(SEND_ERROR "check_layers: ${f} is listed as core but does not exist")
    set(bad 1)
    continue()
  endif()
  file(STRINGS "${DIR}/${f}" lines)
  set(no 0)
  foreach(line IN LISTS lines)
    math(EXPR no "${no} + 1")
    string(REGEX REPLACE "/\\*.*\\*/" "" code "${line}") # a comment on the line
    string(REGEX REPLACE "^[ \t]*\\*.*" "" code "${code}") # inside a block comment
    string(REGEX REPLACE "^[ \t]*/\\*.*" "" code "${code}")
    if(code MATCHES "${include_re}")
      message(SEND_ERROR "check_layers: ${f}:${no}: the core includes a network header: ${line}")
      set(bad 1)
    elseif(code MATCHES "${call_re}")
      message(SEND_ERROR "check_layers: ${f}:${no}: the core calls the network by name: ${line}")
      set(bad 1)
    endif()
  endforeach()
endforeach()
if(bad)
  message(FATAL_ERROR "check_layers: the process core reaches the network only through n->net (node.h)")
endif()
message(STATUS "check_layers: ${FILES}: no network header, no network call")
