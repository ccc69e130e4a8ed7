-- Appended to a transition wrapped as `local function transition() ... end`: the script's
-- event enters the outbox P:outbox in the same atomic step. ARGV gains two trailing values,
-- the outcome the event describes ('result:order:courier', the script's reply) and the
-- outbox row ('' for none); the scripts wrapped never read #ARGV.
local r = transition()
local row = ARGV[#ARGV]
if row ~= '' and (tostring(r[1]) .. ':' .. tostring(r[2] or '') .. ':' .. tostring(r[3] or ''))
    == ARGV[#ARGV - 1] then
  redis.call('RPUSH', ARGV[1] .. ':outbox', row)
end
return r
