// Copyright 2026 The convstore Authors.
//
// Umbrella header: everything a program needs to use convstore. Start with
// store.h, then options.h.

#ifndef CONVSTORE_CONVSTORE_H_
#define CONVSTORE_CONVSTORE_H_

#include "convstore/analytics.h"
#include "convstore/analytics_types.h"
#include "convstore/audit.h"
#include "convstore/audit_types.h"
#include "convstore/cache.h"
#include "convstore/dead_letter.h"
#include "convstore/keys.h"
#include "convstore/options.h"
#include "convstore/retention.h"
#include "convstore/stats.h"
#include "convstore/status.h"
#include "convstore/store.h"
#include "convstore/types.h"

#endif  // CONVSTORE_CONVSTORE_H_
