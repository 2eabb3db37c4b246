// The one translation unit that compiles Asio and Beast (separate compilation,
// BOOST_ASIO_SEPARATE_COMPILATION / BOOST_BEAST_SEPARATE_COMPILATION set on
// sb_asio). Every other file includes only declarations, which keeps the
// build quick on 2 cores.
#include <boost/asio/impl/src.hpp>
#include <boost/asio/ssl/impl/src.hpp>
#include <boost/beast/src.hpp>
