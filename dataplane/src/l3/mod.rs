//! Layer 3 around the ESP engine: the route table, the neighbour (ARP/ND) table shared by the
//! main lcore and the workers.

pub mod neighbor;
pub mod route;

pub use neighbor::NeighborTable;
pub use route::RouteTable;
