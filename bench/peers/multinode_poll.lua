-- wrk script for bench/multinode.sh: the waiting path, GET /__fg/v1/rooms/<room>/status with a
-- waiting ticket in the room's cookie. The room and the ticket come from the environment:
--   FG_ROOM=poll FG_TICKET=... wrk -s bench/peers/multinode_poll.lua http://127.0.0.1:PORT
local room = os.getenv("FG_ROOM") or "poll"
local ticket = os.getenv("FG_TICKET") or ""

wrk.method = "GET"
wrk.path = "/__fg/v1/rooms/" .. room .. "/status"
wrk.headers["Cookie"] = "fg_ticket_" .. room .. "=" .. ticket
