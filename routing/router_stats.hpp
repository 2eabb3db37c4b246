#pragma once
// Figures of one shard's routing: written by its router and its engine on
// the shard thread, read anywhere (relaxed counters; the ops endpoint reads
// them without locking).

#include "pool/counter.hpp"

namespace sb::routing {

struct router_stats {
  counter local_channels;     // channels with local subscriptions
  counter home_channels;      // channels this shard is home of
  counter subscriptions;      // local subscriptions (active + pending)
  counter publications_in;    // publications that entered here
  counter publications_home;  // publications ordered here as home (engine)
  counter publications_dropped;  // at the home, with no subscriber anywhere and nothing kept (engine)
  counter deliveries;         // frames queued to local subscribers
  counter frames_encoded;     // push frames encoded (one per publication per shard per push format)
  counter mesh_refused;       // sends the mesh shed (ring and overflow full)
  counter history_publications;  // publications retained at this home now (engine)
  counter history_bytes;      // their payload bytes (data + channel) (engine)
  counter recoveries;         // recovery requests answered here as home (engine)
  counter recoveries_failed;  // ... that could not be served (recovered: false) (engine)
  counter presence_entries;   // clients in the presence of channels homed here (engine)
  counter history_evictions;  // channels whose history history_max_bytes dropped (engine)
  counter stream_gaps;        // publications a subscriber shard found missing (shed forwards)
  counter presence_lost;      // joins/leaves dropped: the mesh refused them and the backlog was full
};

}  // namespace sb::routing
