//! Virtual CPx cards (CPS3 IAS-ECC, CPS4 ChipDoc) that behave like the real ones on the wire.
