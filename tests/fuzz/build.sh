#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan) into build-fuzz/.
#   tests/fuzz/build.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
out=build-fuzz
mkdir -p "$out"
CXX=${CXX:-clang++}
common=(-std=c++20 -g -O1 -I. -fno-omit-frame-pointer -fsanitize=address,undefined
        -DBOOST_ASIO_SEPARATE_COMPILATION -DBOOST_BEAST_SEPARATE_COMPILATION -DBOOST_ASIO_NO_DEPRECATED
        -DSB_POOL_CHECKS)
# Asio/Beast once, without fuzzer instrumentation (it is not what we fuzz).
if [[ ! -f $out/asio_impl.o || gateway/asio_impl.cpp -nt $out/asio_impl.o ]]; then
  $CXX "${common[@]}" -c gateway/asio_impl.cpp -o $out/asio_impl.o
fi
$CXX "${common[@]}" -fsanitize=fuzzer tests/fuzz/fuzz_ws_decoder.cpp session/ws_codec.cpp pool/frame_buffer.cpp \
  -lsimdjson -o $out/fuzz_ws_decoder
$CXX "${common[@]}" -fsanitize=fuzzer tests/fuzz/fuzz_ws_inflate.cpp session/ws_deflate.cpp session/ws_codec.cpp \
  pool/frame_buffer.cpp -lsimdjson -lz -o $out/fuzz_ws_inflate
$CXX "${common[@]}" -fsanitize=fuzzer tests/fuzz/fuzz_http_upgrade.cpp session/http_upgrade.cpp $out/asio_impl.o \
  -lcrypto -lssl -lfmt -lpthread -o $out/fuzz_http_upgrade
$CXX "${common[@]}" -fsanitize=fuzzer tests/fuzz/fuzz_jwt.cpp gateway/jwt.cpp gateway/jwt_keys.cpp \
  gateway/jwt_parse.cpp gateway/jwt_signature.cpp -lsimdjson -lcrypto -o $out/fuzz_jwt
$CXX "${common[@]}" -fsanitize=fuzzer tests/fuzz/fuzz_centrifuge_json.cpp session/json_reader.cpp \
  session/json_validate.cpp session/json_writer.cpp session/protocol.cpp -lsimdjson -o $out/fuzz_centrifuge_json
$CXX "${common[@]}" -fsanitize=fuzzer tests/fuzz/fuzz_protobuf_command.cpp session/protobuf_decoder.cpp \
  session/protobuf_encoder.cpp session/protocol.cpp -lsimdjson -o $out/fuzz_protobuf_command
$CXX "${common[@]}" -fsanitize=fuzzer tests/fuzz/fuzz_server_api.cpp gateway/server_api_parse.cpp \
  session/json_writer.cpp session/protocol.cpp -lsimdjson -lfmt \
  -o $out/fuzz_server_api
$CXX "${common[@]}" -fsanitize=fuzzer tests/fuzz/fuzz_redis_codec.cpp routing/redis_codec.cpp -o $out/fuzz_redis_codec
$CXX "${common[@]}" -fsanitize=fuzzer tests/fuzz/fuzz_proxy_reply.cpp gateway/proxy.cpp gateway/http_pool.cpp \
  session/json_writer.cpp session/protocol.cpp $out/asio_impl.o -lsimdjson -lfmt -lpthread -lssl -lcrypto -o $out/fuzz_proxy_reply
# The TLS-to-WebSocket glue in a real session: sessions, their TLS, the
# frame codec and upgrade parser all instrumented.
$CXX "${common[@]}" -fsanitize=fuzzer tests/fuzz/fuzz_tls_session.cpp session/session.cpp session/session_context.cpp \
  session/session_tls.cpp session/tls.cpp session/tls_record.cpp session/ws_codec.cpp session/ws_deflate.cpp \
  session/http_upgrade.cpp session/admission.cpp pool/frame_buffer.cpp pool/timer_wheel.cpp $out/asio_impl.o \
  -lsimdjson -lfmt -lpthread -lssl -lcrypto -lz -o $out/fuzz_tls_session
echo "built: $out/fuzz_ws_decoder $out/fuzz_ws_inflate $out/fuzz_http_upgrade $out/fuzz_jwt $out/fuzz_centrifuge_json $out/fuzz_protobuf_command $out/fuzz_server_api" \
  "$out/fuzz_redis_codec $out/fuzz_proxy_reply $out/fuzz_tls_session"
