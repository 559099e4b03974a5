"""Wire formats only: V1 and V2 (OIP) codecs, datatypes, and the gRPC messages."""
