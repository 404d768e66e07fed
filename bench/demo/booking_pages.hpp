// The HTML of the demo booking site (Seoul Concert Hall): home page, booking
// page, confirmation and error pages. Pure functions from data to text;
// everything that came from a user goes through html_escape().
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "booking_state.hpp"

namespace floodgate::demo {

std::string html_escape(std::string_view s);

std::string home_page();
std::string reserve_page(const std::vector<performance>& programme);
std::string confirmation_page(const reservation& r, std::string_view name);
// A page for 4xx/5xx answers to browsers: a heading and one sentence.
std::string message_page(std::string_view heading, std::string_view message);

}  // namespace floodgate::demo
