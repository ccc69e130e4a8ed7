-- One idle claim. ARGV: P, geo_status, courier, order, offer, now, expires
return claim_idle(ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7])
