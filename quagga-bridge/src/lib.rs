//! VIP route announcement through FRR, bird and quagga.
