-- One region's fresh members inside a lat/lng box, in one call (their statuses are read from
-- the dispatch slot afterwards: `statuses.lua`).
-- KEYS[1] = the region's last-seen set, KEYS[2] = its position hash; ARGV: min ts, lat_lo,
-- lat_hi, lng_lo, lng_hi. Returns five strings: ids (\n), lats, lngs, ts (comma-separated,
-- as stored) and live cells (\n), so a 10,000-courier reply is five bulk strings rather
-- than 50,000. Positions are read with one HMGET per HMGET_CHUNK members.
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[1], '+inf')
local lat_lo, lat_hi = tonumber(ARGV[2]), tonumber(ARGV[3])
local lng_lo, lng_hi = tonumber(ARGV[4]), tonumber(ARGV[5])
local o_id, o_lat, o_lng, o_ts, o_cell = {}, {}, {}, {}, {}
local n = 0
for s = 1, #ids, HMGET_CHUNK do
  local chunk = {}
  for t = s, math.min(s + HMGET_CHUNK - 1, #ids) do chunk[#chunk + 1] = ids[t] end
  local got = redis.call('HMGET', KEYS[2], unpack(chunk))
  for t = 1, #chunk do
    local p = got[t]
    if p then
      local la_s, ln_s, ts_s, c = string.match(p, '^([^,]*),([^,]*),([^,]*),(.*)$')
      local la, ln = tonumber(la_s), tonumber(ln_s)
      if la >= lat_lo and la <= lat_hi and ln >= lng_lo and ln <= lng_hi then
        n = n + 1
        o_id[n], o_lat[n], o_lng[n], o_ts[n], o_cell[n] = chunk[t], la_s, ln_s, ts_s, c
      end
    end
  end
end
return {table.concat(o_id, '\n'), table.concat(o_lat, ','), table.concat(o_lng, ','),
  table.concat(o_ts, ','), table.concat(o_cell, '\n')}
