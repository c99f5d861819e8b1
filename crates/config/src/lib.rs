//! The configuration model, its VRP-style parser, and the config sync rules.
