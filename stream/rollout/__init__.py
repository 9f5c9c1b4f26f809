"""``toyfuse rollout``: put a new fusion model into service without downtime and without re-encoding.

Design (keys in stream.store.versions, scripts in stream.store.listing_scripts and rollout_scripts):

* **Versioned sets.** Each fusion version has its own vector set, ``<vector set>:<version>``, named in a
  registry hash; look-ups read the active version from one pointer key (absent before the first switch:
  then they search the schema's set, as before). A worker write goes to the set of the fusion version
  its record names (the schema's set when that version is not registered) and leaves every other set:
  a set holds exactly the listings whose current vectors were fused by its version.
* **Shadow vectors.** ``rollout start`` applies the new network in-process to each listing's stored
  per-modality vectors (no re-encoding, no media) and stores the result in ``vec:fused@<version>``
  and in the new set. Each listing carries a ``stamp`` that every write script bumps; a rollout write
  applies only if the stamp is the one it read, so it never overwrites a newer write with older input.
* **Catch-up.** While a rollout is registered, every write script also adds its listing to a changed
  set, in the same atomic step. The scan starts after registration, so a listing is either read by
  the scan after its last write or is in the changed set; the catch-up recomputes those and removes
  each one only with a write that the stamp guard accepted. This is simpler than comparing stamps
  across the whole keyspace, and needs no lock: a second rollout process is harmless.
* **Switch.** One Lua script checks that the scan is complete and that nothing waits for the catch-up,
  then sets the pointer. ``similar`` reads the pointer and searches inside one script, ``get`` reads it
  with the hash in one transaction: no reader sees a mix of versions. A record whose fused vector is
  not of the active version (a worker still serving the old model) is not returned until the catch-up
  fuses it; after the switch the catch-up writes the new vector as the record's own.
* **Cleanup.** Once the worker serves the new model, ``cleanup`` makes every shadow vector the record's
  own (``model_version`` names the new fusion) and drops the other versions' sets and the tracking.

Refused: a repository whose video pooling differs from the served one (stored ``vec:video`` is pooled)
or that brings other encoders, and records embedded by other encoders than the served ones; those need
re-embedding from the source topics. Out of scope: serving two fusion models from one Triton (the worker
writes with whichever Triton serves), and rolling back after cleanup (roll the old model out again).
"""
