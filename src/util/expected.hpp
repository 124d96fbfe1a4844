/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A minimal std::expected stand-in (C++23's is not available in C++20 mode).
 * Errors are values across every layer of the plugin: nothing throws.
 */
#pragma once

#include <cassert>
#include <type_traits>
#include <utility>
#include <variant>

namespace nftpm {

template<typename E>
class Unexpected
{
public:
	explicit Unexpected(E e) : error_(std::move(e)) {}
	E &error() & { return error_; }
	E &&error() && { return std::move(error_); }

private:
	E error_;
};

template<typename E>
Unexpected(E) -> Unexpected<E>;

template<typename T, typename E>
class [[nodiscard]] Expected
{
public:
	Expected(T value) : v_(std::in_place_index<0>, std::move(value)) {}
	template<typename U>
	Expected(Unexpected<U> e) : v_(std::in_place_index<1>, std::move(e).error()) {}

	bool has_value() const { return v_.index() == 0; }
	explicit operator bool() const { return has_value(); }

	T &value() & { assert(has_value()); return std::get<0>(v_); }
	const T &value() const & { assert(has_value()); return std::get<0>(v_); }
	T &&value() && { assert(has_value()); return std::get<0>(std::move(v_)); }
	T &operator*() & { return value(); }
	const T &operator*() const & { return value(); }
	T *operator->() { return &value(); }
	const T *operator->() const { return &value(); }

	E &error() & { assert(!has_value()); return std::get<1>(v_); }
	const E &error() const & { assert(!has_value()); return std::get<1>(v_); }
	E &&error() && { assert(!has_value()); return std::get<1>(std::move(v_)); }

private:
	std::variant<T, E> v_;
};

/* Expected<void, E>: success carries nothing. */
template<typename E>
class [[nodiscard]] Expected<void, E>
{
public:
	Expected() = default;
	template<typename U>
	Expected(Unexpected<U> e) : error_(std::move(e).error()), ok_(false) {}

	bool has_value() const { return ok_; }
	explicit operator bool() const { return ok_; }

	E &error() & { assert(!ok_); return error_; }
	const E &error() const & { assert(!ok_); return error_; }
	E &&error() && { assert(!ok_); return std::move(error_); }

private:
	E error_{};
	bool ok_ = true;
};

} /* namespace nftpm */
