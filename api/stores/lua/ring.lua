-- The members of one ring batch of cells with their status.
-- KEYS = cell hashes; ARGV[1] = status hash. Returns id, packed, status... (statuses read
-- with one HMGET per HMGET_CHUNK members).
local out = {}
local ids = {}
for _, key in ipairs(KEYS) do
  local flat = redis.call('HGETALL', key)
  for j = 1, #flat, 2 do
    out[#out + 1] = flat[j]
    out[#out + 1] = flat[j + 1]
    ids[#ids + 1] = flat[j]
  end
end
local statuses = {}
if #ids > 0 then
  for s = 1, #ids, HMGET_CHUNK do
    local chunk = {}
    for t = s, math.min(s + HMGET_CHUNK - 1, #ids) do chunk[#chunk + 1] = ids[t] end
    local got = redis.call('HMGET', ARGV[1], unpack(chunk))
    for _, v in ipairs(got) do statuses[#statuses + 1] = v or '' end
  end
end
local res = {}
for n = 1, #ids do
  res[#res + 1] = out[2 * n - 1]
  res[#res + 1] = out[2 * n]
  res[#res + 1] = statuses[n]
end
return res
