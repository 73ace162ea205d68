/**
 * Preloaded (`node --require bench/heap-sampler.cjs`) by bench/heap-profile.ts in every process of
 * the service (the cluster's workers inherit it through NODE_OPTIONS): SIGUSR2 starts V8's
 * sampling heap profiler, counting objects the garbage collector has since freed too (what a
 * request allocates and drops is what the young generation's collections cost); a second SIGUSR2
 * stops it and writes the profile to $KMS_HEAP_PROFILE_DIR/heap-<pid>.heapprofile (the format
 * Chrome's DevTools open), then a file `<pid>.done` once written.
 */
'use strict';
const inspector = require('node:inspector');
const fs = require('node:fs');
const path = require('node:path');

const dir = process.env.KMS_HEAP_PROFILE_DIR;
if (dir) {
  const session = new inspector.Session();
  session.connect();
  let sampling = false;
  process.on('SIGUSR2', () => {
    if (!sampling) {
      sampling = true;
      session.post('HeapProfiler.startSampling', {
        samplingInterval: Number(process.env.KMS_HEAP_SAMPLING_BYTES || 1024),
        includeObjectsCollectedByMajorGC: true,
        // KMS_HEAP_SURVIVORS=1: only what outlived a young-generation collection (what gets
        // promoted, and what the old generation's collections then cost).
        includeObjectsCollectedByMinorGC: process.env.KMS_HEAP_SURVIVORS !== '1',
      });
      return;
    }
    sampling = false;
    session.post('HeapProfiler.stopSampling', (error, result) => {
      if (error) throw error;
      fs.writeFileSync(path.join(dir, `heap-${process.pid}.heapprofile`), JSON.stringify(result.profile));
      fs.writeFileSync(path.join(dir, `${process.pid}.done`), '');
    });
  });
}
