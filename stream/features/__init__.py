"""Pure feature math: the text each encoder sees, review weighting, batch packing and vectors."""
