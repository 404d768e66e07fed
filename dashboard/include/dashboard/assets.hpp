// Web assets compiled into the binary (dashboard/web/*): the waiting page
// template and what the operators' dashboard serves.
#pragma once

#include <cstddef>
#include <string_view>

namespace floodgate::dashboard {

struct asset {
    const char* name;          // file name in dashboard/web
    const char* content_type;
    std::string_view data;
};

extern const asset embedded_assets[];
extern const std::size_t embedded_asset_count;

// The asset with this file name, or nullptr.
const asset* find_asset(std::string_view name);

}  // namespace floodgate::dashboard
