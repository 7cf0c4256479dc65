//! Integration tests of `tandem-server`, in one binary so they link once. Every test talks
//! to a real server on 127.0.0.1.
