-- wrk script for `npm run bench` (performance.md Protocol P): POST a 104-byte JSON-RPC tools/call.
-- No response() callback on purpose: defining one makes wrk parse every response in Lua and costs
-- load-generator CPU. wrk counts status >= 400 in summary.errors.status ("Non-2xx or 3xx").
wrk.method = "POST"
wrk.body = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"forecast","arguments":{"city":"Paris"}}}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json, text/event-stream"

-- One machine-readable line for test/bench/wrk.ts (latency in microseconds).
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests":%d,"durationUs":%d,"bytes":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,' ..
    '"p50":%d,"p90":%d,"p99":%d,"mean":%.2f,"max":%d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.mean, latency.max))
end
