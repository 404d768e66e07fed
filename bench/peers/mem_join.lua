-- wrk script for bench/mem_scale.sh: every request is a new person joining the line
-- (POST /__fg/v1/rooms/<FG_ROOM>/join, no cookies), until FG_JOINS responses in all
-- (each of FG_THREADS threads stops after its share; wrk itself waits out -d, so the script
-- stops it). wrk sends no cookies, so every join is a fresh ticket. With FG_IDENTITY (a header
-- name) every request also carries a distinct identity, FG_ID_PREFIX-<thread>-<n>, as a site's
-- login layer would send it: the room then keeps one identity-map entry per person as well.
local room = os.getenv("FG_ROOM") or "mem"
local total = tonumber(os.getenv("FG_JOINS") or "0")
local threads_n = tonumber(os.getenv("FG_THREADS") or "1")
local id_header = os.getenv("FG_IDENTITY") or ""
local id_prefix = os.getenv("FG_ID_PREFIX") or "p"
local share = 0
local done = 0
local sent = 0
local thread_no = 0
local next_thread = 0

wrk.method = "POST"
wrk.path = "/__fg/v1/rooms/" .. room .. "/join"
wrk.headers["Accept"] = "application/json"
wrk.headers["Content-Length"] = "0"

function setup(thread)
  next_thread = next_thread + 1
  thread:set("thread_no", next_thread)
end

function init(args)
  share = math.ceil(total / threads_n)
end

if id_header ~= "" then
  function request()
    sent = sent + 1
    local h = { ["Accept"] = "application/json", ["Content-Length"] = "0" }
    h[id_header] = id_prefix .. "-" .. thread_no .. "-" .. sent
    return wrk.format("POST", wrk.path, h)
  end
end

function response(status, headers, body)
  done = done + 1
  if share > 0 and done >= share then
    wrk.thread:stop()
  end
end
