//! The real binary against a real PostgreSQL: what happens when the
//! database fails and comes back, and when the process is told to stop.

mod production {
    pub mod abuse;
    pub mod account_mail;
    pub mod cluster;
    pub mod database_failure;
    pub mod mail;
    pub mod migrate_on_start;
    pub mod password_strength;
    pub mod server;
    pub mod shutdown;
    pub mod slow_clients;
    pub mod stalls;
}
