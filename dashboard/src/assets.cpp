#include "dashboard/assets.hpp"

namespace floodgate::dashboard {

const asset* find_asset(std::string_view name) {
    for (std::size_t i = 0; i < embedded_asset_count; ++i)
        if (embedded_assets[i].name == name) return &embedded_assets[i];
    return nullptr;
}

}  // namespace floodgate::dashboard
