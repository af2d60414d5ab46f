// SPDX-License-Identifier: GPL-2.0
//! Placeholder so that cargo accepts the manifest; nothing is built from here.
